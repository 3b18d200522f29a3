//! Compile errors with the line and column they were found at (ManageSieve's PUTSCRIPT and
//! CHECKSCRIPT report them to the user, RFC 5804 §2.6).

use std::fmt;

/// A place in a script: line and column, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line number, from 1.
    pub line: u32,
    /// Column (characters), from 1.
    pub col: u32,
}

/// Why a script does not compile, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Where the problem starts.
    pub pos: Pos,
    /// What is wrong, for a person.
    pub message: String,
}

impl CompileError {
    /// An error at `pos`.
    pub fn at(pos: Pos, message: impl Into<String>) -> Self {
        CompileError {
            pos,
            message: message.into(),
        }
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.pos.line, self.pos.col, self.message
        )
    }
}

impl std::error::Error for CompileError {}
