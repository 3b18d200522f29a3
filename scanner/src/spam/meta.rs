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
    /// The value of the expression given each rule's hit count, by walking the tree: the
    /// reference the compiled [`Program`] (which the engine runs) is tested against.
    #[cfg(test)]
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
                apply(*op, l, r.eval(hits))
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

/// Where a meta expression reads rules' hit counts.
pub trait Values {
    /// Rule `rule`'s hit count.
    fn value(&mut self, rule: usize) -> u32;
}

impl Values for &[u32] {
    fn value(&mut self, rule: usize) -> u32 {
        self.get(rule).copied().unwrap_or(0)
    }
}

/// One step of a compiled expression ([`Program`]), on a stack of values.
#[derive(Debug, Clone, Copy)]
enum Step {
    Num(f64),
    Rule(u32),
    Not,
    Neg,
    Bin(Op),
    /// `&&`: the left value is on the stack; when false, it becomes 0 and the right side
    /// (up to step `.0`) is skipped.
    AndSkip(u32),
    /// `||`: when the left value is true, it becomes 1 and the right side is skipped.
    OrSkip(u32),
    /// The value on top as a truth value (0 or 1), after the right side of `&&`/`||`.
    Truth,
}

/// An expression compiled to a flat list of steps: the same values as [`Expr::eval`]
/// without following a tree of boxes (every meta rule runs on every message).
#[derive(Debug, Clone)]
pub struct Program {
    steps: Vec<Step>,
}

impl Program {
    /// Compiles `e`.
    pub fn new(e: &Expr) -> Program {
        let mut steps = Vec::new();
        emit(e, &mut steps);
        Program { steps }
    }

    /// The expression's value with the rules' hit counts `hits`; `stack` is scratch space
    /// reused between calls.
    pub fn eval(&self, hits: &[u32], stack: &mut Vec<f64>) -> f64 {
        let mut read = hits;
        self.eval_with(&mut read, stack)
    }

    /// The expression's value, each rule's hit count read from `values` when the expression
    /// reaches it (the right side of a decided `&&` or `||` is not read).
    pub fn eval_with<V: Values + ?Sized>(&self, values: &mut V, stack: &mut Vec<f64>) -> f64 {
        stack.clear();
        let b = |v: bool| if v { 1.0 } else { 0.0 };
        let mut pc = 0;
        while let Some(step) = self.steps.get(pc) {
            pc += 1;
            match *step {
                Step::Num(n) => stack.push(n),
                Step::Rule(i) => stack.push(f64::from(values.value(i as usize))),
                Step::Not => {
                    let v = stack.pop().unwrap_or(0.0);
                    stack.push(b(v == 0.0));
                }
                Step::Neg => {
                    let v = stack.pop().unwrap_or(0.0);
                    stack.push(-v);
                }
                Step::Bin(op) => {
                    let r = stack.pop().unwrap_or(0.0);
                    let l = stack.pop().unwrap_or(0.0);
                    stack.push(apply(op, l, r));
                }
                Step::AndSkip(to) => {
                    if stack.last().copied().unwrap_or(0.0) == 0.0 {
                        if let Some(top) = stack.last_mut() {
                            *top = 0.0;
                        }
                        pc = to as usize;
                    } else {
                        stack.pop();
                    }
                }
                Step::OrSkip(to) => {
                    if stack.last().copied().unwrap_or(0.0) != 0.0 {
                        if let Some(top) = stack.last_mut() {
                            *top = 1.0;
                        }
                        pc = to as usize;
                    } else {
                        stack.pop();
                    }
                }
                Step::Truth => {
                    let v = stack.pop().unwrap_or(0.0);
                    stack.push(b(v != 0.0));
                }
            }
        }
        stack.pop().unwrap_or(0.0)
    }
}

/// `e` with the operands of each `&&` and `||` chain put cheapest first, by the cost of
/// reading each rule (`cost`), and its cost: the sum over the rules it reads. Both operators
/// yield a truth value and read nothing else, so the order changes no value; evaluated on
/// demand, a cheap operand that decides the chain spares reading the costly ones.
pub fn cheapest_first(e: Expr, cost: &dyn Fn(usize) -> f64) -> (Expr, f64) {
    match e {
        Expr::Num(n) => (Expr::Num(n), 0.0),
        Expr::Rule(i) => (Expr::Rule(i), cost(i)),
        Expr::Not(x) => {
            let (x, c) = cheapest_first(*x, cost);
            (Expr::Not(Box::new(x)), c)
        }
        Expr::Neg(x) => {
            let (x, c) = cheapest_first(*x, cost);
            (Expr::Neg(Box::new(x)), c)
        }
        Expr::Bin(op @ (Op::And | Op::Or), l, r) => {
            let mut operands = Vec::new();
            chain(op, Expr::Bin(op, l, r), &mut operands);
            let mut done: Vec<(Expr, f64)> = operands
                .into_iter()
                .map(|x| cheapest_first(x, cost))
                .collect();
            // Stable: operands of equal cost keep their written order.
            done.sort_by(|a, b| a.1.total_cmp(&b.1));
            let total = done.iter().map(|(_, c)| c).sum();
            let mut it = done.into_iter().map(|(x, _)| x);
            let first = it.next().unwrap_or(Expr::Num(0.0));
            let e = it.fold(first, |acc, x| Expr::Bin(op, Box::new(acc), Box::new(x)));
            (e, total)
        }
        Expr::Bin(op, l, r) => {
            let (l, a) = cheapest_first(*l, cost);
            let (r, b) = cheapest_first(*r, cost);
            (Expr::Bin(op, Box::new(l), Box::new(r)), a + b)
        }
    }
}

/// `e` with each rule whose value is fixed (`known`) replaced by that value and every part
/// whose value follows from fixed values worked out: `0 && x` and `1 || x` no longer read `x`
/// (both yield a truth value), and operators over numbers are applied. The value is that of
/// `e` for every value of the rules still read.
pub fn fold(e: &Expr, known: &dyn Fn(usize) -> Option<f64>) -> Expr {
    let b = |v: bool| Expr::Num(if v { 1.0 } else { 0.0 });
    match e {
        Expr::Num(n) => Expr::Num(*n),
        Expr::Rule(i) => known(*i).map_or(Expr::Rule(*i), Expr::Num),
        Expr::Not(x) => match fold(x, known) {
            Expr::Num(n) => b(n == 0.0),
            x => Expr::Not(Box::new(x)),
        },
        Expr::Neg(x) => match fold(x, known) {
            Expr::Num(n) => Expr::Num(-n),
            x => Expr::Neg(Box::new(x)),
        },
        Expr::Bin(op, l, r) => {
            let (l, r) = (fold(l, known), fold(r, known));
            let num = |x: &Expr| match x {
                Expr::Num(n) => Some(*n),
                _ => None,
            };
            match (op, num(&l), num(&r)) {
                (_, Some(x), Some(y)) => Expr::Num(apply(*op, x, y)),
                (Op::And, Some(n), _) | (Op::And, _, Some(n)) if n == 0.0 => b(false),
                (Op::Or, Some(n), _) | (Op::Or, _, Some(n)) if n != 0.0 => b(true),
                _ => Expr::Bin(*op, Box::new(l), Box::new(r)),
            }
        }
    }
}

/// The operands of a chain of `op` (`a && b && c`), in order.
fn chain(op: Op, e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Bin(o, l, r) if o == op => {
            chain(op, *l, out);
            chain(op, *r, out);
        }
        e => out.push(e),
    }
}

fn emit(e: &Expr, out: &mut Vec<Step>) {
    match e {
        Expr::Num(n) => out.push(Step::Num(*n)),
        Expr::Rule(i) => out.push(Step::Rule(u32::try_from(*i).unwrap_or(u32::MAX))),
        Expr::Not(x) => {
            emit(x, out);
            out.push(Step::Not);
        }
        Expr::Neg(x) => {
            emit(x, out);
            out.push(Step::Neg);
        }
        Expr::Bin(op @ (Op::And | Op::Or), l, r) => {
            emit(l, out);
            let at = out.len();
            out.push(Step::Truth);
            emit(r, out);
            out.push(Step::Truth);
            let end = u32::try_from(out.len()).unwrap_or(u32::MAX);
            out[at] = if *op == Op::And {
                Step::AndSkip(end)
            } else {
                Step::OrSkip(end)
            };
        }
        Expr::Bin(op, l, r) => {
            emit(l, out);
            emit(r, out);
            out.push(Step::Bin(*op));
        }
    }
}

/// A binary operator other than `&&`/`||` on two values (SpamAssassin's meta arithmetic;
/// division by zero gives 0).
fn apply(op: Op, l: f64, r: f64) -> f64 {
    let b = |v: bool| if v { 1.0 } else { 0.0 };
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
        Op::Or => b(l != 0.0 || r != 0.0),
        Op::And => b(l != 0.0 && r != 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compiled program gives the tree's value for every expression and every
    /// assignment of small hit counts to its rules.
    #[test]
    fn programs_equal_the_tree() {
        let exprs = [
            "A && !B",
            "A + B + C > 1",
            "(A || B) && C",
            "A || B && C",
            "A * 2 >= 4",
            "A - B == -1",
            "!(A && B) || (C && !A)",
            "(A + B) / C",
            "-A + (B || C) * 3 < 2 && !!C",
            "((A)) && ((B || (C && A)) || !C)",
            "A / 0 + 1",
        ];
        let mut stack = Vec::new();
        for src in exprs {
            let e = parsed(src);
            let p = Program::new(&e);
            for a in 0..3u32 {
                for b in 0..3u32 {
                    for c in 0..3u32 {
                        let hits = [a, b, c];
                        assert_eq!(p.eval(&hits, &mut stack), e.eval(&hits), "{src} {hits:?}");
                    }
                }
            }
        }
    }

    /// Reordered cheapest first, an expression keeps its value for every assignment, and a
    /// chain's costly operand moves behind the cheap ones.
    #[test]
    fn cheapest_first_keeps_values_and_moves_costly_operands_last() {
        let cost = |i: usize| [5.0, 0.0, 1.0][i];
        let exprs = [
            "A && B",
            "A || B || C",
            "(A || B) && C && !A",
            "A + B > 1 && (C || A)",
            "!(A && B) || (C && !A) || B * 2 == 2",
            "A - B == -1 && -A < B",
        ];
        for src in exprs {
            let e = parsed(src);
            let (r, _) = cheapest_first(e.clone(), &cost);
            for a in 0..3u32 {
                for b in 0..3u32 {
                    for c in 0..3u32 {
                        let hits = [a, b, c];
                        assert_eq!(r.eval(&hits), e.eval(&hits), "{src} {hits:?}");
                    }
                }
            }
        }
        let (r, c) = cheapest_first(parsed("A && B && C"), &cost);
        assert_eq!(r, parsed("B && C && A"));
        assert_eq!(c, 6.0);
        let (r, _) = cheapest_first(parsed("(A || C) && B"), &cost);
        assert_eq!(r, parsed("B && (C || A)"));
    }

    /// Folded with C fixed at 0, 1 or 2, an expression keeps its value for every assignment
    /// of the others, and an operand behind `0 &&` or `1 ||` is no longer read.
    #[test]
    fn folding_keeps_values_and_drops_what_a_fixed_rule_decides() {
        let exprs = [
            "A && C",
            "C && A",
            "A || !C",
            "!C || (A && B)",
            "(A || B) && C && !A",
            "A + B + C > 1",
            "A + C * 2 >= 2 && B",
            "-C < A || B / C == 1",
            "!(A && C) || (C && !B)",
            "(A && C) + B",
            "C - 1 && A",
        ];
        for c in 0..3u32 {
            let known = |i: usize| (i == 2).then_some(c as f64);
            for src in exprs {
                let e = parsed(src);
                let f = fold(&e, &known);
                let mut reads = Vec::new();
                f.rules(&mut reads);
                assert!(!reads.contains(&2), "{src} with C={c} still reads C: {f:?}");
                for a in 0..3u32 {
                    for b in 0..3u32 {
                        let hits = [a, b, c];
                        assert_eq!(f.eval(&hits), e.eval(&hits), "{src} {hits:?}");
                    }
                }
            }
        }
        let none = |i: usize| (i == 2).then_some(0.0);
        assert_eq!(fold(&parsed("A && C"), &none), Expr::Num(0.0));
        assert_eq!(fold(&parsed("B || !C"), &none), Expr::Num(1.0));
        assert_eq!(
            fold(&parsed("(A || C) && B"), &none),
            parsed("(A || 0) && B")
        );
    }

    /// `src` over the rules A, B and C.
    fn parsed(src: &str) -> Expr {
        let names = ["A", "B", "C"];
        let mut missing = Vec::new();
        parse(
            src,
            &mut |n| names.iter().position(|x| *x == n),
            &mut missing,
        )
        .expect("parses")
    }

    fn value(src: &str, hits: &[u32]) -> f64 {
        parsed(src).eval(hits)
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
