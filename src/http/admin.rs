//! The owner's routes under `/api/admin/` (API.md "Your data"): `POST merge-account` hands
//! an imported author's history to a real account (`data/merge.rs` does the work on the
//! store thread; every `/ws` then hears `user_merge`), `GET backups` shows scheduled backups for the admin settings. Runs on the
//! connection thread; owns nothing.

use serde::Deserialize;
use serde_json::json;

use super::api::{admin, body};
use crate::error::{ApiError, ApiResult};
use crate::http::{Request, Response};
use crate::realtime::chat::commit_then_publish;
use crate::realtime::protocol::ServerEvent;
use crate::App;

/// `rest` is the path after `/api/admin/`.
pub fn route(req: &Request, app: &App, rest: &str) -> ApiResult<Response> {
    match (req.method.as_str(), rest) {
        ("POST", "merge-account") => merge_account(req, app),
        ("GET", "backups") => {
            admin(req, app)?;
            let c = &app.config;
            let status = crate::data::schedule::status(
                c.backup_dir.as_deref(),
                c.backup_every_h,
                c.backup_keep,
            );
            Ok(Response::json(200, &json!(status)).with_header("Cache-Control", "no-store"))
        }
        (_, "merge-account" | "backups") => Err(ApiError::new(
            crate::error::Code::MethodNotAllowed,
            "method not allowed here",
        )),
        _ => Err(ApiError::not_found("no such endpoint")),
    }
}

#[derive(Deserialize)]
struct MergeBody {
    from: String,
    into: String,
}

fn merge_account(req: &Request, app: &App) -> ApiResult<Response> {
    // The owner (the first account) only: it rewrites who wrote years of history.
    let owner = admin(req, app)?;
    let b: MergeBody = body(req)?;
    let blobs = app.files.blobs.clone();
    // Open pages hear of it after the COMMIT, in commit order (`user_merge`), and re-show
    // the moved messages under the real account without a reload.
    let (reply, answer) = crossbeam_channel::bounded(1);
    commit_then_publish(
        app,
        move |c| {
            let m = crate::data::merge_account(c, &blobs, &b.from, &b.into)?;
            let into = crate::store::user_by_id(c, m.into_id)?;
            Ok((m, into))
        },
        move |result, publisher| {
            if let Ok((m, into)) = &result {
                publisher.publish(ServerEvent::UserMerge {
                    from: m.from.clone(),
                    into: into.clone(),
                });
            }
            let _ = reply.send(result.map(|(m, _)| m));
        },
    )?;
    let m = answer.recv().map_err(|_| ApiError::internal())??;
    // The audit trail: who merged what into whom, and how much moved.
    log::info!(
        "merge-account by {:?} (id {}): imported account {:?} (id {}) merged into {:?} (id {}): {} messages, {} reactions",
        owner.username,
        owner.id,
        m.from,
        m.from_id,
        m.into,
        m.into_id,
        m.messages,
        m.reactions
    );
    Ok(Response::json(
        200,
        &json!({"from": m.from, "into": m.into, "messages": m.messages, "reactions": m.reactions}),
    ))
}
