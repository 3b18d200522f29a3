//! Key layout of the mailbox index (see the module documentation for the map).

/// Key of the next mailbox id.
pub(super) const NEXT_ID_KEY: &[u8] = b"i";

pub(super) fn meta_key(user: &str, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + user.len() + name.len());
    k.push(b'b');
    k.extend_from_slice(user.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

pub(super) fn msg_key(kind: u8, id: u64, uid: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(13);
    k.push(kind);
    k.extend_from_slice(&id.to_be_bytes());
    k.extend_from_slice(&uid.to_be_bytes());
    k
}

pub(super) fn name_key(id: u64, base: &str) -> Vec<u8> {
    let mut k = id_prefix(b'n', id);
    k.extend_from_slice(base.as_bytes());
    k
}

pub(super) fn id_prefix(kind: u8, id: u64) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// `s<id:8><user>`: where earlier versions kept a user's private \Seen set as one value.
pub(super) fn seen_user_prefix(id: u64, user: &str) -> Vec<u8> {
    let mut k = id_prefix(b's', id);
    k.extend_from_slice(user.as_bytes());
    k
}

/// `s<id:8><user>\0`: the prefix of a user's private \Seen keys (logins hold no NUL, so one
/// user's keys never run into another's whose login starts the same).
pub(super) fn seen_key_prefix(id: u64, user: &str) -> Vec<u8> {
    let mut k = seen_user_prefix(id, user);
    k.push(0);
    k
}

/// `s<id:8><user>\0<uid:4>`: `user` has seen message `uid` of mailbox `id`.
pub(super) fn seen_key(id: u64, user: &str, uid: u32) -> Vec<u8> {
    let mut k = seen_key_prefix(id, user);
    k.extend_from_slice(&uid.to_be_bytes());
    k
}

/// The full-text index key of `token` in mailbox `id`.
pub(super) fn fts_key(id: u64, token: &str) -> Vec<u8> {
    let mut k = id.to_be_bytes().to_vec();
    k.extend_from_slice(token.as_bytes());
    k
}
