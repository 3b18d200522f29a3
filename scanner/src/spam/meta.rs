//! Meta rules: boolean and arithmetic expressions over other rules' hit counts, with Perl's
//! operators and precedence (`!`; `* /`; `+ -`; `< > <= >=`; `== !=`; `&&`; `||`).

/// A parsed meta expression; rule names are resolved to indexes by the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Num(f64),
    /// A rule's hit count (index into the rule table).
    Rule(usize),
    /// `!e`
    Not(Box<Expr>),
    /// `-e`
    Neg(Box<Expr>),
    /// A binary operator.
    Bin(Op, Box<Expr>, Box<Expr>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// Parses `src`; `resolve` maps a rule name to its index (`None`: unknown, read as 0 and
/// reported through `missing`).
pub fn parse(
    src: &str,
    resolve: &mut dyn FnMut(&str) -> Option<usize>,
    missing: &mut Vec<String>,
) -> Result<Expr, String> {
    let mut p = Parser {
        s: src.as_bytes(),
        i: 0,
        resolve,
        missing,
    };
    let e = p.binary(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected {:?}", &src[p.i..]));
    }
    Ok(e)
}

struct Parser<'a, 'r> {
    s: &'a [u8],
    i: usize,
    resolve: &'r mut dyn FnMut(&str) -> Option<usize>,
    missing: &'r mut Vec<String>,
}

/// Operators by precedence level, loosest first.
const LEVELS: &[&[(&str, Op)]] = &[
    &[("||", Op::Or)],
    &[("&&", Op::And)],
    &[("==", Op::Eq), ("!=", Op::Ne)],
    &[("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)],
    &[("+", Op::Add), ("-", Op::Sub)],
    &[("*", Op::Mul), ("/", Op::Div)],
];

impl Parser<'_, '_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn binary(&mut self, level: usize) -> Result<Expr, String> {
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        'outer: loop {
            self.ws();
            for (tok, op) in LEVELS[level] {
                if self.s[self.i..].starts_with(tok.as_bytes()) {
                    self.i += tok.len();
                    let right = self.binary(level + 1)?;
                    left = Expr::Bin(*op, Box::new(left), Box::new(right));
                    continue 'outer;
                }
            }
            return Ok(left);
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.ws();
        let Some(&c) = self.s.get(self.i) else {
            return Err("expression ends early".into());
        };
        match c {
            b'!' => {
                self.i += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            b'-' => {
                self.i += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            b'(' => {
                self.i += 1;
                let e = self.binary(0)?;
                self.ws();
                if self.s.get(self.i) != Some(&b')') {
                    return Err("missing )".into());
                }
                self.i += 1;
                Ok(e)
            }
            b'0'..=b'9' | b'.' => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_digit() || self.s[self.i] == b'.')
                {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                t.parse()
                    .map(Expr::Num)
                    .map_err(|_| format!("bad number {t}"))
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
                {
                    self.i += 1;
                }
                let name =
                    std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                Ok(match (self.resolve)(name) {
                    Some(i) => Expr::Rule(i),
                    None => {
                        self.missing.push(name.to_string());
                        Expr::Num(0.0)
                    }
                })
            }
            _ => Err(format!("unexpected character {:?}", c as char)),
        }
    }
}

impl Expr {
    /// The value of the expression given each rule's hit count.
    pub fn eval(&self, hits: &[u32]) -> f64 {
        let b = |v: bool| if v { 1.0 } else { 0.0 };
        match self {
            Expr::Num(n) => *n,
            Expr::Rule(i) => hits.get(*i).copied().unwrap_or(0) as f64,
            Expr::Not(e) => b(e.eval(hits) == 0.0),
            Expr::Neg(e) => -e.eval(hits),
            Expr::Bin(op, l, r) => {
                let l = l.eval(hits);
                // `&&` and `||` short-circuit and yield a truth value.
                match op {
                    Op::Or => return b(l != 0.0 || r.eval(hits) != 0.0),
                    Op::And => return b(l != 0.0 && r.eval(hits) != 0.0),
                    _ => {}
                }
                let r = r.eval(hits);
                match op {
                    Op::Eq => b(l == r),
                    Op::Ne => b(l != r),
                    Op::Lt => b(l < r),
                    Op::Gt => b(l > r),
                    Op::Le => b(l <= r),
                    Op::Ge => b(l >= r),
                    Op::Add => l + r,
                    Op::Sub => l - r,
                    Op::Mul => l * r,
                    Op::Div if r == 0.0 => 0.0,
                    Op::Div => l / r,
                    Op::Or | Op::And => 0.0,
                }
            }
        }
    }

    /// The rules the expression reads.
    pub fn rules(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Num(_) => {}
            Expr::Rule(i) => out.push(*i),
            Expr::Not(e) | Expr::Neg(e) => e.rules(out),
            Expr::Bin(_, l, r) => {
                l.rules(out);
                r.rules(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(src: &str, hits: &[u32]) -> f64 {
        let names = ["A", "B", "C"];
        let mut missing = Vec::new();
        let e = parse(
            src,
            &mut |n| names.iter().position(|x| *x == n),
            &mut missing,
        )
        .expect("parses");
        e.eval(hits)
    }

    #[test]
    fn precedence_and_truth_values() {
        assert_eq!(value("A && !B", &[1, 0, 0]), 1.0);
        assert_eq!(value("A && !B", &[1, 1, 0]), 0.0);
        assert_eq!(value("A + B + C > 1", &[1, 0, 1]), 1.0);
        assert_eq!(value("A + B + C > 1", &[1, 0, 0]), 0.0);
        assert_eq!(value("(A || B) && C", &[0, 1, 1]), 1.0);
        assert_eq!(value("A || B && C", &[1, 0, 0]), 1.0);
        assert_eq!(value("A * 2 >= 4", &[2, 0, 0]), 1.0);
        assert_eq!(value("A - B == -1", &[0, 1, 0]), 1.0);
    }

    #[test]
    fn unknown_rules_read_as_zero_and_are_reported() {
        let mut missing = Vec::new();
        let e = parse("A || NOPE", &mut |n| (n == "A").then_some(0), &mut missing).expect("ok");
        assert_eq!(missing, ["NOPE"]);
        assert_eq!(e.eval(&[0]), 0.0);
        assert!(parse("A &&", &mut |_| Some(0), &mut missing).is_err());
        assert!(parse("(A", &mut |_| Some(0), &mut missing).is_err());
    }
}
