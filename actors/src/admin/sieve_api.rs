//! `/api/sieve/…` and `/api/users/{login}/vacation`: users' and global Sieve scripts over the
//! admin API (the CLI's `postcore admin sieve …` calls these).

use super::{ApiError, ApiResult, AppState, json_ok, not_found};
use crate::sieve_admin::{self, SieveError, VacationSpec};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postcore_storage::sieve::GLOBAL;
use serde_json::json;

impl From<SieveError> for ApiError {
    fn from(e: SieveError) -> Self {
        let code = match &e {
            SieveError::Invalid(_) | SieveError::BadName | SieveError::Quota(..) => {
                StatusCode::BAD_REQUEST
            }
            SieveError::NotFound(_) => StatusCode::NOT_FOUND,
            SieveError::Exists(_) | SieveError::Active(_) => StatusCode::CONFLICT,
            SieveError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

/// The owner must be a user of the directory, or `@global`.
fn owner_ok(st: &AppState, owner: &str) -> Result<(), ApiError> {
    if owner == GLOBAL || st.shared.directory.snapshot().users.contains_key(owner) {
        Ok(())
    } else {
        Err(not_found(format!("user {owner}")))
    }
}

fn text(body: &axum::body::Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "invalid: a script is UTF-8 text".into(),
        )
    })
}

/// `GET /api/sieve/{owner}`: the scripts, which is active (for `@global`: before/after).
pub(super) async fn list(State(st): State<AppState>, Path(owner): Path<String>) -> ApiResult {
    owner_ok(&st, &owner)?;
    let scripts = sieve_admin::list(&st.shared, &owner)?;
    let rows: Vec<_> = scripts
        .iter()
        .map(|s| json!({"name": s.name, "size": s.size, "active": s.active}))
        .collect();
    let mut v = json!({"owner": owner, "scripts": rows});
    if owner == GLOBAL {
        let store = &st.shared.sieve.store;
        let internal =
            |e: anyhow::Error| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
        v["before"] = json!(store.global_active(false).map_err(internal)?);
        v["after"] = json!(store.global_active(true).map_err(internal)?);
    }
    json_ok(&v)
}

/// `GET /api/sieve/{owner}/{name}`: the script's source.
pub(super) async fn show(
    State(st): State<AppState>,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult {
    owner_ok(&st, &owner)?;
    let src = sieve_admin::get(&st.shared, &owner, &name)?;
    let active = st
        .shared
        .sieve
        .store
        .is_active(&owner, &name)
        .unwrap_or(false);
    json_ok(&json!({"name": name, "active": active, "script": src}))
}

/// `PUT /api/sieve/{owner}/{name}` with the script as the body: compiled, then stored.
pub(super) async fn put(
    State(st): State<AppState>,
    Path((owner, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    owner_ok(&st, &owner)?;
    sieve_admin::put(&st.shared, &owner, &name, text(&body)?)?;
    json_ok(&json!({"ok": true, "name": name}))
}

/// `POST /api/sieve/check` with a script as the body: whether it compiles, and where not.
pub(super) async fn check(body: axum::body::Bytes) -> ApiResult {
    sieve_admin::check(text(&body)?)?;
    json_ok(&json!({"ok": true}))
}

/// `DELETE /api/sieve/{owner}/{name}`.
pub(super) async fn delete(
    State(st): State<AppState>,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult {
    owner_ok(&st, &owner)?;
    sieve_admin::delete(&st.shared, &owner, &name)?;
    json_ok(&json!({"ok": true}))
}

#[derive(serde::Deserialize, Default)]
pub(super) struct Slot {
    /// For `@global`: "before" (default) or "after".
    slot: Option<String>,
    /// For rename: the new name.
    to: Option<String>,
}

fn slot_after(s: &Slot) -> Result<bool, ApiError> {
    match s.slot.as_deref() {
        None | Some("before") => Ok(false),
        Some("after") => Ok(true),
        Some(o) => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("invalid: slot {o} (before or after)"),
        )),
    }
}

fn slot_of(body: &axum::body::Bytes) -> Result<Slot, ApiError> {
    if body.is_empty() {
        Ok(Slot::default())
    } else {
        super::body(body)
    }
}

/// `POST /api/sieve/{owner}/{name}/activate` (`{"slot": "after"}` for a global script).
pub(super) async fn activate(
    State(st): State<AppState>,
    Path((owner, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    owner_ok(&st, &owner)?;
    let after = slot_after(&slot_of(&body)?)?;
    sieve_admin::activate(&st.shared, &owner, Some(&name), after)?;
    json_ok(&json!({"ok": true, "active": name}))
}

/// `POST /api/sieve/{owner}/deactivate` (`{"slot": …}` for `@global`).
pub(super) async fn deactivate(
    State(st): State<AppState>,
    Path(owner): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    owner_ok(&st, &owner)?;
    let after = slot_after(&slot_of(&body)?)?;
    sieve_admin::activate(&st.shared, &owner, None, after)?;
    json_ok(&json!({"ok": true}))
}

/// `POST /api/sieve/{owner}/{name}/rename` with `{"to": "new"}`.
pub(super) async fn rename(
    State(st): State<AppState>,
    Path((owner, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    owner_ok(&st, &owner)?;
    let to = slot_of(&body)?
        .to
        .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "invalid: \"to\" is missing".into()))?;
    sieve_admin::rename(&st.shared, &owner, &name, &to)?;
    json_ok(&json!({"ok": true, "name": to}))
}

/// `PUT /api/users/{login}/vacation` with `{"subject", "body", "until", "from_date", "days"}`.
pub(super) async fn set_vacation(
    State(st): State<AppState>,
    Path(login): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    if login == GLOBAL {
        return Err(not_found(format!("user {login}")));
    }
    owner_ok(&st, &login)?;
    let spec: VacationSpec = super::body(&body)?;
    let script = sieve_admin::set_vacation(&st.shared, &login, &spec)?;
    json_ok(&json!({"ok": true, "script": script}))
}

/// `DELETE /api/users/{login}/vacation`: off; the earlier active script is active again.
pub(super) async fn clear_vacation(
    State(st): State<AppState>,
    Path(login): Path<String>,
) -> ApiResult {
    owner_ok(&st, &login)?;
    sieve_admin::clear_vacation(&st.shared, &login)?;
    json_ok(&json!({"ok": true}))
}
