//! The generic Sieve grammar (RFC 5228 §8.2): commands with arguments, tests and blocks,
//! before any command is known. `compile` gives the nodes their meaning.

use super::error::{CompileError, Pos};
use super::lexer::Token;

/// Nesting deeper than this (blocks, test lists) is refused: it keeps the parser's and the
/// interpreter's recursion bounded on hostile scripts.
pub const MAX_NESTING: usize = 32;

/// A command or a test with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The identifier, lower case (Sieve identifiers are case-insensitive, RFC 5228 §2.4).
    pub name: String,
    /// Where the identifier is.
    pub pos: Pos,
    /// Tags, numbers and strings in order.
    pub args: Vec<Arg>,
    /// A test, or the tests of a test list.
    pub tests: Vec<Node>,
    /// Whether the tests were written as a parenthesised list.
    pub test_list: bool,
    /// A command's block (`if`, `elsif`, `else`).
    pub block: Option<Vec<Node>>,
}

/// One argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A string or a string list.
    Strings {
        /// The strings.
        list: Vec<String>,
        /// Written with brackets (a one-string list `["a"]` is still a list).
        bracketed: bool,
        /// Where it starts.
        pos: Pos,
    },
    /// A number.
    Number(u64, Pos),
    /// A tag, lower case, without its colon.
    Tag(String, Pos),
}

impl Arg {
    /// Where the argument starts.
    pub fn pos(&self) -> Pos {
        match self {
            Arg::Strings { pos, .. } | Arg::Number(_, pos) | Arg::Tag(_, pos) => *pos,
        }
    }
}

/// Parses a token stream into commands.
pub fn commands(tokens: &[(Token, Pos)]) -> Result<Vec<Node>, CompileError> {
    let mut p = Parser { t: tokens, i: 0 };
    let out = p.commands(0)?;
    if let Some((_, pos)) = p.t.get(p.i) {
        return Err(CompileError::at(*pos, "unexpected '}'"));
    }
    Ok(out)
}

struct Parser<'a> {
    t: &'a [(Token, Pos)],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.t.get(self.i).map(|(t, _)| t)
    }

    fn here(&self) -> Pos {
        self.t
            .get(self.i)
            .or_else(|| self.t.last())
            .map(|(_, p)| *p)
            .unwrap_or(Pos { line: 1, col: 1 })
    }

    fn commands(&mut self, depth: usize) -> Result<Vec<Node>, CompileError> {
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            match t {
                Token::RBrace => break,
                Token::Ident(_) => out.push(self.command(depth)?),
                _ => return Err(CompileError::at(self.here(), "expected a command")),
            }
        }
        Ok(out)
    }

    fn command(&mut self, depth: usize) -> Result<Node, CompileError> {
        let mut node = self.node_head(depth)?;
        match self.peek() {
            Some(Token::Semicolon) => {
                self.i += 1;
            }
            Some(Token::LBrace) => {
                if depth >= MAX_NESTING {
                    return Err(CompileError::at(self.here(), "blocks nested too deeply"));
                }
                self.i += 1;
                let block = self.commands(depth + 1)?;
                if self.peek() != Some(&Token::RBrace) {
                    return Err(CompileError::at(self.here(), "missing '}'"));
                }
                self.i += 1;
                node.block = Some(block);
            }
            _ => {
                return Err(CompileError::at(
                    self.here(),
                    format!("missing ';' after command '{}'", node.name),
                ));
            }
        }
        Ok(node)
    }

    /// identifier, arguments, then an optional test or test list.
    fn node_head(&mut self, depth: usize) -> Result<Node, CompileError> {
        let (name, pos) = match self.t.get(self.i) {
            Some((Token::Ident(n), p)) => (n.to_ascii_lowercase(), *p),
            _ => return Err(CompileError::at(self.here(), "expected an identifier")),
        };
        self.i += 1;
        let mut node = Node {
            name,
            pos,
            args: Vec::new(),
            tests: Vec::new(),
            test_list: false,
            block: None,
        };
        loop {
            let at = self.here();
            match self.peek() {
                Some(Token::Tag(t)) => {
                    node.args.push(Arg::Tag(t.clone(), at));
                    self.i += 1;
                }
                Some(Token::Number(n)) => {
                    node.args.push(Arg::Number(*n, at));
                    self.i += 1;
                }
                Some(Token::Str(s)) => {
                    node.args.push(Arg::Strings {
                        list: vec![s.clone()],
                        bracketed: false,
                        pos: at,
                    });
                    self.i += 1;
                }
                Some(Token::LBracket) => {
                    self.i += 1;
                    let list = self.string_list()?;
                    node.args.push(Arg::Strings {
                        list,
                        bracketed: true,
                        pos: at,
                    });
                }
                _ => break,
            }
        }
        if depth >= MAX_NESTING {
            return Err(CompileError::at(self.here(), "tests nested too deeply"));
        }
        match self.peek() {
            Some(Token::Ident(_)) => node.tests.push(self.node_head(depth + 1)?),
            Some(Token::LParen) => {
                self.i += 1;
                node.test_list = true;
                loop {
                    node.tests.push(self.node_head(depth + 1)?);
                    match self.peek() {
                        Some(Token::Comma) => self.i += 1,
                        Some(Token::RParen) => {
                            self.i += 1;
                            break;
                        }
                        _ => {
                            return Err(CompileError::at(
                                self.here(),
                                "expected ',' or ')' in a test list",
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(node)
    }

    /// After `[`: strings separated by commas, then `]`.
    fn string_list(&mut self) -> Result<Vec<String>, CompileError> {
        let mut list = Vec::new();
        loop {
            match self.t.get(self.i) {
                Some((Token::Str(s), _)) => list.push(s.clone()),
                _ => {
                    return Err(CompileError::at(
                        self.here(),
                        "expected a string in a string list",
                    ));
                }
            }
            self.i += 1;
            match self.peek() {
                Some(Token::Comma) => self.i += 1,
                Some(Token::RBracket) => {
                    self.i += 1;
                    return Ok(list);
                }
                _ => {
                    return Err(CompileError::at(
                        self.here(),
                        "expected ',' or ']' in a string list",
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokens;
    use super::*;

    fn parse(s: &str) -> Result<Vec<Node>, CompileError> {
        commands(&tokens(s)?)
    }

    #[test]
    fn nested_structure() {
        let c = parse(
            "if anyof (not exists \"x\", header :is [\"a\",\"b\"] \"c\") { keep; } else { stop; }",
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].tests[0].name, "anyof");
        assert!(c[0].tests[0].test_list);
        assert_eq!(c[0].tests[0].tests[0].tests[0].name, "exists");
        assert_eq!(c[1].name, "else");
        assert_eq!(c[1].block.as_ref().unwrap()[0].name, "stop");
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("keep;\nstop").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, col: 1 });
        assert!(e.message.contains("missing ';'"), "{e}");
        assert!(parse("if true { keep;").is_err());
        assert!(parse("keep; }").is_err());
        assert!(parse("x [\"a\" \"b\"];").is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "if true {".repeat(40) + &"}".repeat(40);
        assert!(parse(&deep).is_err());
        let deep_tests = format!("if {} true {{}}", "not ".repeat(100));
        assert!(parse(&deep_tests).is_err());
    }
}
