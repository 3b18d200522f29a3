//! The admin HTTP API (JSON) and `/metrics`. Every `/api/` route needs
//! `Authorization: Bearer <token>`; changes apply at once (new directory snapshot) without a
//! restart. The `postcore admin` CLI is a client of this API.
//!
//! Partial updates (PATCH) use JSON merge-patch semantics (RFC 7386) on the stored record.

mod quarantine_api;
mod sieve_api;

use crate::context::Shared;
use crate::usage::Usage;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use postcore_storage::directory::{
    AddressEntry, AdminError, DirectoryHandle, Domain, Group, Mailbox, PublicMailbox, User,
};
use postcore_storage::queue::QueueRecord;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    token: Arc<String>,
    prometheus: PrometheusHandle,
}

/// Builds the router.
pub fn router(shared: Arc<Shared>, token: String, prometheus: PrometheusHandle) -> Router {
    let state = AppState {
        shared,
        token: Arc::new(token),
        prometheus,
    };
    let api = Router::new()
        .route("/domains", get(list_domains).post(add_domain))
        .route(
            "/domains/{name}",
            get(get_domain).patch(patch_domain).delete(delete_domain),
        )
        .route(
            "/domains/{name}/dkim",
            get(show_dkim).post(enable_dkim).delete(disable_dkim),
        )
        .route("/users", get(list_users).post(add_user))
        .route(
            "/users/{login}",
            get(get_user).patch(patch_user).delete(delete_user),
        )
        .route("/users/{login}/mailboxes", get(user_mailboxes))
        .route("/groups", get(list_groups).post(add_group))
        .route(
            "/groups/{name}",
            get(get_group).patch(patch_group).delete(delete_group),
        )
        .route("/public", get(list_public).post(add_public))
        .route(
            "/public/{name}",
            get(get_public).patch(patch_public).delete(delete_public),
        )
        .route("/addresses", get(list_addresses).post(add_address))
        .route(
            "/addresses/{key}",
            get(get_address).patch(patch_address).delete(delete_address),
        )
        .route("/settings", get(get_settings).patch(patch_settings))
        .route("/queue", get(list_queue).delete(delete_queue_all))
        .route("/queue/resend", axum::routing::post(resend_all))
        .route("/queue/{qid}", axum::routing::delete(delete_queue_one))
        .route("/queue/{qid}/resend", axum::routing::post(resend_one))
        .route("/av/status", get(av_status))
        .route("/av/reload", axum::routing::post(av_reload))
        .route("/spam/status", get(spam_status))
        .route("/spam/reload", axum::routing::post(spam_reload))
        .route("/quarantine", get(quarantine_api::list))
        .route(
            "/quarantine/{id}",
            axum::routing::delete(quarantine_api::delete),
        )
        .route(
            "/quarantine/{id}/release",
            axum::routing::post(quarantine_api::release),
        )
        .route("/bayes/status", get(bayes_status))
        .route("/bayes/learn/{what}", axum::routing::post(bayes_learn))
        .route("/bayes/clear", axum::routing::post(bayes_clear))
        .route("/sieve/check", axum::routing::post(sieve_api::check))
        .route("/sieve/{owner}", get(sieve_api::list))
        .route(
            "/sieve/{owner}/deactivate",
            axum::routing::post(sieve_api::deactivate),
        )
        .route(
            "/sieve/{owner}/{name}",
            get(sieve_api::show)
                .put(sieve_api::put)
                .delete(sieve_api::delete),
        )
        .route(
            "/sieve/{owner}/{name}/activate",
            axum::routing::post(sieve_api::activate),
        )
        .route(
            "/sieve/{owner}/{name}/rename",
            axum::routing::post(sieve_api::rename),
        )
        .route(
            "/users/{login}/vacation",
            axum::routing::put(sieve_api::set_vacation).delete(sieve_api::clear_vacation),
        )
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .nest("/api", api)
        .route("/metrics", get(render_metrics))
        .with_state(state)
}

async fn require_token(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.as_bytes(), st.token.as_bytes()));
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "missing or wrong bearer token"})),
        )
            .into_response();
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn render_metrics(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.prometheus.render(),
    )
}

/// An API error response.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let code = match &e {
            AdminError::Invalid(_) => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

type ApiResult = Result<Response, ApiError>;

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, format!("invalid: {e}"))
}

fn not_found(what: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("not found: {what}"))
}

/// Parses a JSON body, answering 400 with the reason instead of axum's plain-text rejection.
fn body<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(b).map_err(bad)
}

/// Runs a directory change on the blocking pool (it fsyncs, and may hash a password).
async fn change<F>(st: &AppState, f: F) -> ApiResult
where
    F: FnOnce(&DirectoryHandle) -> Result<(), AdminError> + Send + 'static,
{
    let dir = st.shared.directory.clone();
    tokio::task::spawn_blocking(move || f(&dir))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(axum::Json(json!({"ok": true})).into_response())
}

/// Applies a JSON merge patch to a record, keeping its key fields.
fn merged<T: Serialize + serde::de::DeserializeOwned>(
    cur: &T,
    patch: Value,
    keep: &[&str],
) -> Result<T, ApiError> {
    let mut v = serde_json::to_value(cur).map_err(bad)?;
    let Value::Object(p) = patch else {
        return Err(bad("body must be a JSON object"));
    };
    let Value::Object(obj) = &mut v else {
        return Err(bad("record is not an object"));
    };
    for (k, val) in p {
        if keep.contains(&k.as_str()) {
            continue;
        }
        if val.is_null() {
            obj.remove(&k);
        } else {
            obj.insert(k, val);
        }
    }
    serde_json::from_value(v).map_err(bad)
}

fn json_ok<T: Serialize>(v: &T) -> ApiResult {
    Ok(axum::Json(v).into_response())
}

// ---- domains, groups, public mailboxes, addresses ----

/// The five handlers (list, get, add, patch, delete) of one kind of directory record.
/// `$keep` are fields a PATCH may not change (the record's key).
macro_rules! crud {
    ($field:ident, $ty:ty, $what:literal, [$($keep:literal),*],
     $list:ident, $get:ident, $add:ident, $patch:ident, $del:ident,
     add = $addf:expr, update = $updf:expr, remove = $remf:expr) => {
        async fn $list(State(st): State<AppState>) -> ApiResult {
            json_ok(&st.shared.directory.snapshot().$field.values().collect::<Vec<_>>())
        }

        async fn $get(State(st): State<AppState>, Path(key): Path<String>) -> ApiResult {
            let snap = st.shared.directory.snapshot();
            json_ok(snap.$field.get(&key.to_lowercase()).ok_or_else(|| not_found(format!("{} {key}", $what)))?)
        }

        async fn $add(State(st): State<AppState>, b: axum::body::Bytes) -> ApiResult {
            let v: $ty = body(&b)?;
            change(&st, move |dir| $addf(dir, v)).await
        }

        async fn $patch(State(st): State<AppState>, Path(key): Path<String>, b: axum::body::Bytes) -> ApiResult {
            let snap = st.shared.directory.snapshot();
            let cur = snap.$field.get(&key.to_lowercase()).ok_or_else(|| not_found(format!("{} {key}", $what)))?;
            let v: $ty = merged(cur, body(&b)?, &[$($keep),*])?;
            change(&st, move |dir| $updf(dir, v)).await
        }

        async fn $del(State(st): State<AppState>, Path(key): Path<String>) -> ApiResult {
            change(&st, move |dir| $remf(dir, &key.to_lowercase())).await
        }
    };
}

crud!(
    domains,
    Domain,
    "domain",
    ["name"],
    list_domains,
    get_domain,
    add_domain,
    patch_domain,
    delete_domain,
    add = |d: &DirectoryHandle, v| d.add_domain(v),
    update = |d: &DirectoryHandle, v| d.update_domain(v),
    remove = |d: &DirectoryHandle, k: &str| d.remove_domain(k)
);
crud!(
    groups,
    Group,
    "group",
    ["name"],
    list_groups,
    get_group,
    add_group,
    patch_group,
    delete_group,
    add = |d: &DirectoryHandle, v| d.put_group(v, true),
    update = |d: &DirectoryHandle, v| d.put_group(v, false),
    remove = |d: &DirectoryHandle, k: &str| d.remove_group(k)
);
crud!(
    public,
    PublicMailbox,
    "public mailbox",
    ["name"],
    list_public,
    get_public,
    add_public,
    patch_public,
    delete_public,
    add = |d: &DirectoryHandle, v| d.put_public(v, true),
    update = |d: &DirectoryHandle, v| d.put_public(v, false),
    remove = |d: &DirectoryHandle, k: &str| d.remove_public(k)
);
crud!(
    addresses,
    AddressEntry,
    "address",
    ["local", "domain"],
    list_addresses,
    get_address,
    add_address,
    patch_address,
    delete_address,
    add = |d: &DirectoryHandle, v| d.put_address(v, true),
    update = |d: &DirectoryHandle, v| d.put_address(v, false),
    remove = |d: &DirectoryHandle, k: &str| d.remove_address(k)
);

// ---- users ----

#[derive(Serialize)]
struct UserView<'a> {
    login: &'a str,
    mail_access: bool,
    quota_mb: Option<u64>,
    effective_quota_bytes: Option<u64>,
    forward: &'a [String],
    keep_copy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_spam_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spam_to_junk: Option<bool>,
    usage: Usage,
}

fn user_view<'a>(
    st: &AppState,
    snap: &'a postcore_storage::directory::Directory,
    u: &'a User,
) -> UserView<'a> {
    let mb = Mailbox::User(u.login.clone());
    UserView {
        login: &u.login,
        mail_access: u.mail_access,
        quota_mb: u.quota_mb,
        effective_quota_bytes: snap.quota_bytes(&mb),
        forward: &u.forward,
        keep_copy: u.keep_copy,
        keep_spam_days: u.keep_spam_days,
        spam_to_junk: u.spam_to_junk,
        usage: st.shared.usage.get(&mb),
    }
}

async fn list_users(State(st): State<AppState>) -> ApiResult {
    let snap = st.shared.directory.snapshot();
    json_ok(
        &snap
            .users
            .values()
            .map(|u| user_view(&st, &snap, u))
            .collect::<Vec<_>>(),
    )
}

async fn get_user(State(st): State<AppState>, Path(login): Path<String>) -> ApiResult {
    let snap = st.shared.directory.snapshot();
    let u = snap
        .users
        .get(&login.to_lowercase())
        .ok_or_else(|| not_found(format!("user {login}")))?;
    json_ok(&user_view(&st, &snap, u))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    login: String,
    password: String,
    #[serde(default = "yes")]
    mail_access: bool,
    #[serde(default)]
    quota_mb: Option<u64>,
    #[serde(default)]
    forward: Vec<String>,
    #[serde(default = "yes")]
    keep_copy: bool,
    #[serde(default)]
    keep_spam_days: Option<u32>,
    #[serde(default)]
    spam_to_junk: Option<bool>,
}

fn yes() -> bool {
    true
}

async fn add_user(State(st): State<AppState>, b: axum::body::Bytes) -> ApiResult {
    let n: NewUser = body(&b)?;
    let u = User {
        login: n.login,
        password_hash: String::new(),
        mail_access: n.mail_access,
        quota_mb: n.quota_mb,
        forward: n.forward,
        keep_copy: n.keep_copy,
        keep_spam_days: n.keep_spam_days,
        spam_to_junk: n.spam_to_junk,
    };
    change(&st, move |dir| dir.add_user(u, &n.password)).await
}

async fn patch_user(
    State(st): State<AppState>,
    Path(login): Path<String>,
    b: axum::body::Bytes,
) -> ApiResult {
    let snap = st.shared.directory.snapshot();
    let cur = snap
        .users
        .get(&login.to_lowercase())
        .ok_or_else(|| not_found(format!("user {login}")))?;
    let mut patch: Value = body(&b)?;
    let password = match patch.as_object_mut().and_then(|o| o.remove("password")) {
        Some(Value::String(p)) => Some(p),
        Some(_) => return Err(bad("password must be a string")),
        None => None,
    };
    if patch.get("password_hash").is_some() {
        return Err(bad("password_hash cannot be set; send password"));
    }
    let u = merged(cur, patch, &["login"])?;
    change(&st, move |dir| dir.update_user(u, password.as_deref())).await
}

/// Usage per IMAP mailbox of a user (Email > Mailboxes > Users > quota view).
async fn user_mailboxes(State(st): State<AppState>, Path(login): Path<String>) -> ApiResult {
    let login = login.to_lowercase();
    if !st.shared.directory.snapshot().users.contains_key(&login) {
        return Err(not_found(format!("user {login}")));
    }
    let idx = st.shared.mailboxes.clone();
    let root = crate::usage::mailbox_path(&st.shared.mail_root, &Mailbox::User(login.clone()));
    let rows = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Value>> {
        let mut rows = Vec::new();
        for (name, meta) in idx.list(&login)? {
            let path = postcore_storage::mailbox::folder_path(&root, &name);
            let lock = idx.lock(meta.id);
            let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut meta = meta;
            idx.sync(&login, &name, &mut meta, &path)?;
            let msgs = idx.messages(meta.id)?;
            let bytes: u64 = msgs.iter().map(|(_, r)| r.size).sum();
            rows.push(serde_json::json!({
                "name": name,
                "messages": msgs.len(),
                "bytes": bytes,
                "special_use": meta.special_use,
            }));
        }
        Ok(rows)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    json_ok(&rows)
}

async fn delete_user(State(st): State<AppState>, Path(login): Path<String>) -> ApiResult {
    change(&st, move |dir| dir.remove_user(&login.to_lowercase())).await
}

// ---- settings ----

async fn get_settings(State(st): State<AppState>) -> ApiResult {
    json_ok(&st.shared.directory.snapshot().settings)
}

async fn patch_settings(State(st): State<AppState>, b: axum::body::Bytes) -> ApiResult {
    let mut patch: Value = body(&b)?;
    // Secrets arrive in clear (`imap.master_password`, `imap.migration_password`) and are
    // stored as Argon2 hashes only.
    if let Some(imap) = patch.get_mut("imap").and_then(Value::as_object_mut) {
        for (clear, hashed) in [
            ("master_password", "master_password_hash"),
            ("migration_password", "migration_password_hash"),
        ] {
            if imap.contains_key(hashed) {
                return Err(bad(format!("{hashed} cannot be set; send {clear}")));
            }
            match imap.remove(clear) {
                Some(Value::String(p)) if !p.is_empty() => {
                    let h =
                        tokio::task::spawn_blocking(move || postcore_storage::password::hash(&p))
                            .await
                            .map_err(|e| {
                                ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                            })?
                            .map_err(|e| {
                                ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
                            })?;
                    imap.insert(hashed.into(), Value::String(h));
                }
                Some(Value::Null) | Some(Value::String(_)) => {
                    imap.insert(hashed.into(), Value::Null);
                }
                Some(_) => return Err(bad(format!("{clear} must be a string"))),
                None => {}
            }
        }
    }
    let dir = st.shared.directory.clone();
    let s = tokio::task::spawn_blocking(move || dir.patch_settings(patch))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    json_ok(&s)
}

// ---- queue ----

async fn list_queue(State(st): State<AppState>) -> ApiResult {
    let recs = QueueRecord::load_all(&st.shared.store)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    let view: Vec<Value> = recs.iter().map(queue_view).collect();
    json_ok(&view)
}

/// A queue record as the API shows it: each recipient's last error as its text
/// (`mailbox over quota`, or the remote server's reply) with its status code beside it as `dsn`.
fn queue_view(rec: &QueueRecord) -> Value {
    let mut v = serde_json::to_value(rec).unwrap_or(Value::Null);
    if let Some(rcpts) = v.get_mut("rcpts").and_then(Value::as_array_mut) {
        for (r, q) in rcpts.iter_mut().zip(&rec.rcpts) {
            if let (Some(obj), Some(f)) = (r.as_object_mut(), &q.last_error) {
                obj.insert("last_error".into(), json!(f.reason));
                obj.insert("dsn".into(), json!(f.dsn));
            }
        }
    }
    v
}

fn queue_error(e: String) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, e)
}

/// Removes queued messages (all, or one QID): record and spool file, no bounce. The queue
/// actor does it, so a delivery running meanwhile does not write the record back.
async fn delete_queued(st: &AppState, which: Option<&str>) -> ApiResult {
    let n = st
        .shared
        .queue
        .delete(which.map(str::to_string))
        .await
        .map_err(queue_error)?;
    if let (Some(q), 0) = (which, n) {
        return Err(not_found(format!("queued message {q}")));
    }
    json_ok(&json!({"deleted": n}))
}

async fn delete_queue_all(State(st): State<AppState>) -> ApiResult {
    delete_queued(&st, None).await
}

async fn delete_queue_one(State(st): State<AppState>, Path(qid): Path<String>) -> ApiResult {
    delete_queued(&st, Some(&qid)).await
}

/// `GET /api/av/status`: the signature database (signatures by kind, skipped and why,
/// version, load time, the last reload's outcome).
async fn av_status(State(st): State<AppState>) -> ApiResult {
    json_ok(&st.shared.scanner.filter.status())
}

/// `POST /api/av/reload`: reads the signature directory now (off the event loop); a broken
/// file answers 400 with the reason and the loaded database stays.
async fn av_reload(State(st): State<AppState>) -> ApiResult {
    let pool = st.shared.scanner.clone();
    reload_off_loop(move || pool.reload()).await?;
    json_ok(&st.shared.scanner.filter.status())
}

/// Runs a reload on a blocking thread; its failure is a 400 with the reason.
async fn reload_off_loop(
    f: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("reload failed: {e}")))
}

/// `GET /api/spam/status`: the antispam rules (loaded by type, on Hyperscan, prefiltered, on
/// fancy-regex, skipped and why, the last load) and the statistics since start (messages by
/// action, hits by symbol).
async fn spam_status(State(st): State<AppState>) -> ApiResult {
    let a = &st.shared.scanner.filter.antispam;
    json_ok(&json!({"rules": a.status(), "stats": a.stats()}))
}

/// `POST /api/spam/reload`: reads the rule directories now (off the event loop); a broken
/// file answers 400 and the loaded rules stay.
async fn spam_reload(State(st): State<AppState>) -> ApiResult {
    let pool = st.shared.scanner.clone();
    reload_off_loop(move || pool.reload_spam()).await?;
    spam_status(State(st)).await
}

/// Runs a Bayes store operation off the event loop (RocksDB reads and fsynced writes).
async fn bayes_off_loop<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("bayes: {e}")))
}

/// `GET /api/bayes/status`: learned spam and ham, tokens, store size, active or not, the
/// training progress towards 200/200, and the messages waiting in the IMAP learning queue.
async fn bayes_status(State(st): State<AppState>) -> ApiResult {
    let b = st.shared.bayes.clone();
    let status = bayes_off_loop(move || b.status()).await?;
    let mut v = serde_json::to_value(&status)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    v["pending"] = json!(st.shared.bayes_trainer.pending());
    json_ok(&v)
}

/// `POST /api/bayes/learn/{spam|ham|forget}` with one message as the body (sa-learn's job,
/// one message a request): learned at once (durably) off the event loop; answers what it
/// did (`learned`, `relearned`, `already_learned`, `forgotten`, `not_learned`).
async fn bayes_learn(
    State(st): State<AppState>,
    Path(what): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    use postcore_scanner::bayes::Class;
    let class = match what.as_str() {
        "spam" => Some(Class::Spam),
        "ham" => Some(Class::Ham),
        "forget" => None,
        _ => {
            return Err(not_found(format!(
                "bayes action {what} (spam, ham or forget)"
            )));
        }
    };
    let b = st.shared.bayes.clone();
    let outcome = bayes_off_loop(move || match class {
        Some(c) => b.learn(&body, c),
        None => b.forget(&body),
    })
    .await?;
    metrics::counter!(crate::metrics::BAYES_LEARNS, "class" => what, "source" => "admin", "outcome" => outcome.name())
        .increment(1);
    json_ok(&json!({"outcome": outcome}))
}

/// `POST /api/bayes/clear`: forgets everything learned.
async fn bayes_clear(State(st): State<AppState>) -> ApiResult {
    let b = st.shared.bayes.clone();
    bayes_off_loop(move || b.store().clear()).await?;
    bayes_status(State(st)).await
}

async fn resend_all(State(st): State<AppState>) -> ApiResult {
    st.shared.queue.resend(None).await.map_err(queue_error)?;
    json_ok(&json!({"ok": true}))
}

async fn resend_one(State(st): State<AppState>, Path(qid): Path<String>) -> ApiResult {
    let found = st
        .shared
        .queue
        .resend(Some(qid.clone()))
        .await
        .map_err(queue_error)?;
    if !found {
        return Err(not_found(format!("queued message {qid}")));
    }
    json_ok(&json!({"ok": true}))
}

// ---- DKIM ----

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DkimRequest {
    #[serde(default)]
    algorithm: postcore_storage::directory::DkimAlgorithm,
    #[serde(default)]
    selector: Option<String>,
}

fn dkim_view(st: &AppState, name: &str) -> ApiResult {
    let snap = st.shared.directory.snapshot();
    let d = snap
        .domains
        .get(name)
        .ok_or_else(|| not_found(format!("domain {name}")))?;
    let Some(set) = &d.dkim else {
        return Err(not_found(format!("DKIM for domain {name} (not enabled)")));
    };
    let txt = st
        .shared
        .dkim
        .txt_record(name, set.algorithm)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    json_ok(&json!({
        "domain": name,
        "selector": set.selector,
        "algorithm": set.algorithm,
        "record_name": format!("{}._domainkey.{name}", set.selector),
        "record": txt,
    }))
}

async fn show_dkim(State(st): State<AppState>, Path(name): Path<String>) -> ApiResult {
    dkim_view(&st, &name.to_lowercase())
}

async fn enable_dkim(
    State(st): State<AppState>,
    Path(name): Path<String>,
    b: axum::body::Bytes,
) -> ApiResult {
    let name = name.to_lowercase();
    let req: DkimRequest = if b.is_empty() {
        DkimRequest::default()
    } else {
        body(&b)?
    };
    let selector = req.selector.unwrap_or_else(|| "default".into());
    // RFC 6376 §3.1: a selector is one or more DNS labels (RFC 1035 §2.3.1: letters, digits
    // and inner hyphens, 63 octets at most each).
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    };
    if selector.len() > 63 * 4 || !selector.split('.').all(label_ok) {
        return Err(bad(format!("selector {selector:?}: not a DNS label")));
    }
    let snap = st.shared.directory.snapshot();
    let mut d = snap
        .domains
        .get(&name)
        .cloned()
        .ok_or_else(|| not_found(format!("domain {name}")))?;
    if d.kind != postcore_storage::directory::DomainKind::Local {
        return Err(bad("DKIM signing is for local domains"));
    }
    d.dkim = Some(postcore_storage::directory::DkimSetting {
        selector,
        algorithm: req.algorithm,
    });
    let (shared, algo, n2) = (st.shared.clone(), req.algorithm, name.clone());
    tokio::task::spawn_blocking(move || shared.dkim.ensure(&n2, algo))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    change(&st, move |dir| dir.update_domain(d)).await?;
    dkim_view(&st, &name)
}

async fn disable_dkim(State(st): State<AppState>, Path(name): Path<String>) -> ApiResult {
    let name = name.to_lowercase();
    let snap = st.shared.directory.snapshot();
    let mut d = snap
        .domains
        .get(&name)
        .cloned()
        .ok_or_else(|| not_found(format!("domain {name}")))?;
    d.dkim = None;
    change(&st, move |dir| dir.update_domain(d)).await
}
