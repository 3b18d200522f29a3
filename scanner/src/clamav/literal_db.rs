//! Hyperscan's pure-literal compiler (`hs_compile_lit_multi`, Hyperscan 5.2+), which the
//! `hyperscan` crate wraps only for UTF-8 text. Signature anchors are arbitrary bytes (NUL
//! included), and compiling them as literals skips the regex parser: the 65,000 anchors of
//! the anchors' `mixed` set compile several times faster than as regular expressions.

use foreign_types::ForeignType;
use hyperscan::BlockDatabase;
use hyperscan_sys as ffi;
use std::ffi::CStr;

/// One literal: its bytes, whether letters match in either case, and its pattern id.
pub struct Lit {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// ASCII letters match in either case.
    pub caseless: bool,
    /// Reported on a match.
    pub id: u32,
}

/// A refused compile: the message and the index of the literal at fault, if known.
pub struct LitError {
    /// Hyperscan's message.
    pub message: String,
    /// Index into the input.
    pub index: Option<usize>,
}

/// Compiles `lits` into a block-mode database; each reports once per scan.
pub fn compile(lits: &[Lit]) -> Result<BlockDatabase, LitError> {
    let ptrs: Vec<*const libc::c_char> = lits.iter().map(|l| l.bytes.as_ptr().cast()).collect();
    let lens: Vec<usize> = lits.iter().map(|l| l.bytes.len()).collect();
    let ids: Vec<libc::c_uint> = lits.iter().map(|l| l.id).collect();
    let flags: Vec<libc::c_uint> = lits
        .iter()
        .map(|l| ffi::HS_FLAG_SINGLEMATCH | if l.caseless { ffi::HS_FLAG_CASELESS } else { 0 })
        .collect();
    let mut db: *mut ffi::hs_database_t = std::ptr::null_mut();
    let mut err: *mut ffi::hs_compile_error_t = std::ptr::null_mut();
    // SAFETY: the four arrays have `lits.len()` elements and outlive the call; each pointer
    // with its length names a live byte buffer (NULs allowed by the literal API); `db` and
    // `err` are out-parameters Hyperscan fills.
    let rc = unsafe {
        ffi::hs_compile_lit_multi(
            ptrs.as_ptr(),
            flags.as_ptr(),
            ids.as_ptr(),
            lens.as_ptr(),
            lits.len() as libc::c_uint,
            ffi::HS_MODE_BLOCK,
            std::ptr::null(),
            &mut db,
            &mut err,
        )
    };
    if rc == ffi::HS_SUCCESS as ffi::hs_error_t && !db.is_null() {
        // SAFETY: a successful compile returns a database this call now owns; the
        // `BlockDatabase` frees it with `hs_free_database` when dropped.
        return Ok(unsafe { BlockDatabase::from_ptr(db) });
    }
    let mut out = LitError {
        message: format!("hs_compile_lit_multi failed ({rc})"),
        index: None,
    };
    if !err.is_null() {
        // SAFETY: on failure `err` points to a compile error owned by us until freed below;
        // its message is a NUL-terminated string.
        unsafe {
            let e = &*err;
            if !e.message.is_null() {
                out.message = CStr::from_ptr(e.message).to_string_lossy().into_owned();
            }
            out.index = usize::try_from(e.expression).ok();
            ffi::hs_free_compile_error(err);
        }
    }
    Err(out)
}
