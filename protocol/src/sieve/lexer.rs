//! Sieve tokens (RFC 5228 §8.1): identifiers, tags, numbers with their quantifiers, quoted and
//! multi-line strings, brackets and punctuation; comments skipped. Every token carries the line
//! and column it starts at, for error messages.

use super::error::{CompileError, Pos};

/// One lexical token.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// An identifier (command or test name), as written.
    Ident(String),
    /// A tagged argument without its colon (`:contains` → `contains`), lower case.
    Tag(String),
    /// A number with its quantifier applied (RFC 5228 §2.4.1: K, M, G).
    Number(u64),
    /// A quoted or multi-line string, escapes and dot-stuffing removed.
    Str(String),
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `,`
    Comma,
    /// `;`
    Semicolon,
}

/// Splits a script into tokens, each with its position.
pub fn tokens(src: &str) -> Result<Vec<(Token, Pos)>, CompileError> {
    let mut lx = Lexer {
        s: src.as_bytes(),
        src,
        i: 0,
        line: 1,
        col: 1,
        out: Vec::new(),
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    line: u32,
    col: u32,
    out: Vec<(Token, Pos)>,
}

impl Lexer<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn bump(&mut self) -> Option<u8> {
        let c = *self.s.get(self.i)?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if c & 0xC0 != 0x80 {
            // Columns count characters, not the continuation octets of UTF-8.
            self.col += 1;
        }
        Some(c)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn run(&mut self) -> Result<(), CompileError> {
        while let Some(c) = self.peek() {
            let at = self.pos();
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    self.bump();
                }
                b'#' => self.line_comment(),
                b'/' if self.s.get(self.i + 1) == Some(&b'*') => self.block_comment(at)?,
                b'"' => {
                    let s = self.quoted(at)?;
                    self.out.push((Token::Str(s), at));
                }
                b'[' | b']' | b'(' | b')' | b'{' | b'}' | b',' | b';' => {
                    self.bump();
                    let t = match c {
                        b'[' => Token::LBracket,
                        b']' => Token::RBracket,
                        b'(' => Token::LParen,
                        b')' => Token::RParen,
                        b'{' => Token::LBrace,
                        b'}' => Token::RBrace,
                        b',' => Token::Comma,
                        _ => Token::Semicolon,
                    };
                    self.out.push((t, at));
                }
                b':' => {
                    self.bump();
                    let name = self.identifier();
                    if name.is_empty() {
                        return Err(CompileError::at(at, "a tag needs a name after ':'"));
                    }
                    self.out.push((Token::Tag(name.to_ascii_lowercase()), at));
                }
                b'0'..=b'9' => {
                    let n = self.number(at)?;
                    self.out.push((Token::Number(n), at));
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let name = self.identifier();
                    if name == "text" && self.peek() == Some(b':') {
                        self.bump();
                        let s = self.multiline(at)?;
                        self.out.push((Token::Str(s), at));
                    } else {
                        self.out.push((Token::Ident(name), at));
                    }
                }
                _ => {
                    let ch = self.src[self.i..].chars().next().unwrap_or('?');
                    return Err(CompileError::at(at, format!("unexpected character '{ch}'")));
                }
            }
        }
        Ok(())
    }

    /// RFC 5228 §8.1: identifier = (ALPHA / "_") *(ALPHA / DIGIT / "_")
    fn identifier(&mut self) -> String {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' {
                self.bump();
            } else {
                break;
            }
        }
        self.src[start..self.i].to_string()
    }

    /// RFC 5228 §2.4.1: a number with an optional K, M or G quantifier (powers of 1024).
    fn number(&mut self, at: Pos) -> Result<u64, CompileError> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let too_big = || CompileError::at(at, "number out of range");
        let n: u64 = self.src[start..self.i].parse().map_err(|_| too_big())?;
        let shift = match self.peek().map(|c| c.to_ascii_uppercase()) {
            Some(b'K') => 10,
            Some(b'M') => 20,
            Some(b'G') => 30,
            _ => return Ok(n),
        };
        self.bump();
        n.checked_mul(1 << shift).ok_or_else(too_big)
    }

    fn line_comment(&mut self) {
        while let Some(c) = self.bump() {
            if c == b'\n' {
                break;
            }
        }
    }

    fn block_comment(&mut self, at: Pos) -> Result<(), CompileError> {
        self.bump();
        self.bump();
        loop {
            match self.bump() {
                None => return Err(CompileError::at(at, "unterminated comment")),
                Some(b'*') if self.peek() == Some(b'/') => {
                    self.bump();
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    /// RFC 5228 §2.4.2: `\\` and `\"` stand for themselves; a backslash before any other
    /// character is dropped. Line ends inside are kept as CRLF.
    fn quoted(&mut self, at: Pos) -> Result<String, CompileError> {
        self.bump();
        let mut out = Vec::new();
        loop {
            match self.bump() {
                None => return Err(CompileError::at(at, "unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => match self.bump() {
                    None => return Err(CompileError::at(at, "unterminated string")),
                    Some(c) => out.push(c),
                },
                Some(b'\n') => {
                    if out.last() != Some(&b'\r') {
                        out.push(b'\r');
                    }
                    out.push(b'\n');
                }
                Some(c) => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| CompileError::at(at, "string is not UTF-8"))
    }

    /// RFC 5228 §2.4.2: `text:` then white space and an optional comment to the line end; the
    /// lines up to one holding a lone `.`; a leading `..` stands for `.` (dot-stuffing).
    fn multiline(&mut self, at: Pos) -> Result<String, CompileError> {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
        match self.peek() {
            Some(b'#') => self.line_comment(),
            Some(b'\r') if self.s.get(self.i + 1) == Some(&b'\n') => {
                self.bump();
                self.bump();
            }
            Some(b'\n') => {
                self.bump();
            }
            _ => return Err(CompileError::at(at, "text: must be followed by a line end")),
        }
        let mut out = String::new();
        loop {
            if self.i >= self.s.len() {
                return Err(CompileError::at(at, "unterminated multi-line string"));
            }
            let rest = &self.src[self.i..];
            let end = rest.find('\n').map_or(rest.len(), |p| p + 1);
            let line = &rest[..end];
            let bare = line.trim_end_matches(['\r', '\n']);
            for _ in 0..end {
                self.bump();
            }
            if bare == "." {
                return Ok(out);
            }
            out.push_str(
                bare.strip_prefix('.')
                    .filter(|_| bare.starts_with(".."))
                    .unwrap_or(bare),
            );
            if line.ends_with('\n') {
                out.push_str("\r\n");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Token> {
        tokens(s).unwrap().into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn basic_tokens() {
        assert_eq!(
            toks("if size :over 1K { discard; } # c\n/* x */"),
            vec![
                Token::Ident("if".into()),
                Token::Ident("size".into()),
                Token::Tag("over".into()),
                Token::Number(1024),
                Token::LBrace,
                Token::Ident("discard".into()),
                Token::Semicolon,
                Token::RBrace,
            ]
        );
    }

    #[test]
    fn strings() {
        assert_eq!(toks(r#""a\"b\\c\d""#), vec![Token::Str("a\"b\\cd".into())]);
        assert_eq!(
            toks("text: # c\r\nline\r\n..dot\r\n.\r\n"),
            vec![Token::Str("line\r\n.dot\r\n".into())]
        );
        assert!(tokens("\"open").is_err());
        assert!(tokens("text:\nno end").is_err());
    }

    #[test]
    fn positions() {
        let t = tokens("keep;\n  stop;").unwrap();
        assert_eq!(t[2].1, Pos { line: 2, col: 3 });
        let e = tokens("keep;\n  @").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, col: 3 });
    }

    #[test]
    fn number_overflow() {
        assert!(tokens("99999999999999999999").is_err());
        assert!(tokens("18014398509481984G").is_err());
    }
}
