//! Web Push (issue 14): with no tab open, a mention or a message of a channel set to "all"
//! reaches the user's browser through its push service (RFC 8030), encrypted for that
//! browser (RFC 8291) and signed with the server's VAPID key (RFC 8292).
//!
//! Threads: the **push worker** (one thread, this file) owns the HTTP client and the VAPID
//! key. The store thread hands it each new message with `Push::offer`, a `try_send` into a
//! bounded queue that never blocks (full: that message is not pushed, and it is logged).
//! The worker asks the store whom to push (`store::push_targets`: not the author, not in
//! do not disturb, by level) and, only if anyone, the router who has a socket open
//! (`Cmd::Connected`: they are not pushed), then sends one request per subscription with a
//! blocking client (`ureq`), whose resolver admits only public addresses (`endpoint.rs`).
//! A push service that answers 404 or 410 has dropped the subscription, and so do we.
//!
//! While nobody has a subscription at all, a message costs nothing here: the worker
//! remembers that it found none, `offer` then does not even wake it, and a new
//! subscription (`Push::subscribed`, after its row committed) makes it look again. Before
//! that, every message cost a wake-up of this thread, a store job and a router command, on
//! the same cores as its fan-out (issue 20).

pub mod crypto;
pub mod endpoint;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use p256::SecretKey;

use crate::model::Message;
use crate::realtime::router::{Cmd, RouterHandle};
use crate::store::{self, Store, Subscription};

/// Messages waiting for the worker. A push is a courtesy, not a delivery guarantee (the
/// message is in history either way): past 256 waiting messages the worker is far behind,
/// and new ones are dropped rather than grow memory without bound.
const QUEUE_BOUND: usize = 256;
/// One push request may take this long in all (connect, TLS, answer). A push service
/// answers in well under a second; a dead one must not hold the queue for long.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a push may wait at the push service for the browser to come online (RFC 8030
/// §5.2 `TTL`): a day, after which a chat notification is stale.
const PUSH_TTL_S: u64 = 24 * 3600;
/// RFC 8292 §2: the JWT's `exp` must be at most 24 hours ahead; 12 hours is the usual.
const VAPID_LIFETIME_S: u64 = 12 * 3600;
/// How long the worker waits for the router's list of connected users (it never blocks,
/// so this only bounds a shutdown).
const ROUTER_WAIT: Duration = Duration::from_secs(2);
/// The body of a notification is cut here: a lock screen shows a line or two.
const BODY_CHARS: usize = 200;

/// What the worker is handed: a committed message and its author.
struct Job {
    message: Message,
    author_id: i64,
}

/// Whether anyone has a push subscription, as far as the worker last looked.
#[derive(Default)]
struct Subscribers {
    /// Bumped after each new subscription commits (`Push::subscribed`).
    added: AtomicU64,
    /// 1 + the `added` count at which the worker found no subscription at all; 0 when it
    /// found some or has not looked yet. While `added` has not moved since, nobody is to be
    /// pushed, and `offer` does not even wake the worker.
    none_at: AtomicU64,
}

impl Subscribers {
    fn nobody(&self) -> bool {
        self.none_at.load(SeqCst) == self.added.load(SeqCst) + 1
    }
}

/// A handle to the push worker; cheap to clone.
#[derive(Clone)]
pub struct Push {
    jobs: Sender<Job>,
    /// Whether anyone has a subscription, shared with the worker.
    subs: Arc<Subscribers>,
    /// The VAPID public key (uncompressed P-256 point), for `GET /api/push/vapid-key`.
    public_key: Vec<u8>,
    pub policy: endpoint::Policy,
}

impl Push {
    /// Hands a committed message to the worker without blocking (safe on the store thread).
    pub fn offer(&self, message: &Message, author_id: i64) {
        if self.subs.nobody() {
            return;
        }
        let job = Job {
            message: message.clone(),
            author_id,
        };
        if let Err(TrySendError::Full(j)) = self.jobs.try_send(job) {
            log::warn!("push queue full: message {} not pushed", j.message.id);
        }
    }

    /// A subscription was added (its row is committed): the worker looks for targets again
    /// even if it last saw none.
    pub fn subscribed(&self) {
        self.subs.added.fetch_add(1, SeqCst);
    }

    /// The VAPID public key, base64url (what `pushManager.subscribe` takes).
    pub fn public_key_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.public_key)
    }
}

/// Whether user `id` may see `channel` (issue 13's one permission rule, handed in so that
/// this folder does not depend on `community/`).
pub type CanView = Box<dyn Fn(i64, &str) -> bool + Send>;

/// Settings the worker needs.
pub struct Settings {
    pub subject: String,
    pub policy: endpoint::Policy,
    pub can_view: CanView,
}

/// Random bytes from the OS. A failing OS random source leaves nothing safe to do.
fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source failed");
    b
}

/// A fresh P-256 key (a random scalar; the rare invalid value is drawn again).
fn new_key() -> SecretKey {
    loop {
        if let Some(k) = crypto::secret_key(&random::<32>()) {
            return k;
        }
    }
}

/// Loads the VAPID key (making it at first start) and starts the worker thread.
pub fn start(store: Store, router: RouterHandle, settings: Settings) -> Result<Push, String> {
    let bytes = store
        .call(|c| store::vapid_key(c, || new_key().to_bytes().to_vec()))
        .map_err(|e| format!("cannot load the VAPID key: {e}"))?;
    let key = crypto::secret_key(&bytes).ok_or("the stored VAPID key is not a P-256 key")?;
    let (tx, rx) = bounded(QUEUE_BOUND);
    let subs = Arc::new(Subscribers::default());
    let push = Push {
        jobs: tx,
        subs: subs.clone(),
        public_key: crypto::public_bytes(&key),
        policy: settings.policy,
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(SEND_TIMEOUT)
        .redirects(0)
        .resolver(endpoint::PublicResolver {
            policy: settings.policy,
        })
        .build();
    let worker = Worker {
        store,
        router,
        subs,
        key,
        subject: settings.subject,
        policy: settings.policy,
        can_view: settings.can_view,
        agent,
    };
    std::thread::Builder::new()
        .name("push".into())
        .spawn(move || worker.run(rx))
        .map_err(|e| format!("cannot start the push thread: {e}"))?;
    Ok(push)
}

struct Worker {
    store: Store,
    router: RouterHandle,
    subs: Arc<Subscribers>,
    key: SecretKey,
    subject: String,
    policy: endpoint::Policy,
    can_view: CanView,
    agent: ureq::Agent,
}

impl Worker {
    fn run(self, rx: Receiver<Job>) {
        while let Ok(job) = rx.recv() {
            // Read before the store is asked: a subscription committed after that read
            // bumps `added`, and the next message looks again.
            let seen = self.subs.added.load(SeqCst);
            if self.subs.nobody() {
                continue;
            }
            let (message, author) = (job.message.clone(), job.author_id);
            let found = self.store.read(move |c| {
                let any = store::any_subscription(c)?;
                let targets = if any {
                    store::push_targets(c, &message, author, &HashSet::new())?
                } else {
                    Vec::new()
                };
                Ok((any, targets))
            });
            let targets = match found {
                Ok((false, _)) => {
                    self.subs.none_at.store(seen + 1, SeqCst);
                    continue;
                }
                Ok((true, targets)) => targets,
                Err(e) => {
                    log::warn!("push of message {}: {e}", job.message.id);
                    continue;
                }
            };
            self.subs.none_at.store(0, SeqCst);
            if targets.is_empty() {
                continue;
            }
            let connected = self.connected();
            let payload = payload(&job.message);
            let channel = &job.message.channel;
            for sub in targets
                .iter()
                .filter(|s| !connected.contains(&s.user_id) && (self.can_view)(s.user_id, channel))
            {
                self.send(sub, &payload);
            }
        }
    }

    /// Users with a `/ws` open: they see the message in the app, so no push.
    fn connected(&self) -> HashSet<i64> {
        let (done, answer) = bounded(1);
        self.router.send(Cmd::Connected { done });
        answer.recv_timeout(ROUTER_WAIT).unwrap_or_default()
    }

    fn send(&self, sub: &Subscription, payload: &[u8]) {
        let Ok(ep) = endpoint::check(&sub.endpoint, self.policy) else {
            log::info!("push subscription {} no longer allowed; dropped", sub.id);
            return self.drop_subscription(sub.id);
        };
        let body = match crypto::encrypt(&sub.p256dh, &sub.auth, payload, &new_key(), &random()) {
            Ok(b) => b,
            Err(_) => return self.drop_subscription(sub.id),
        };
        let exp = (store::now_ms() / 1000) as u64 + VAPID_LIFETIME_S;
        let auth = crypto::vapid_authorization(&self.key, &ep.origin, exp, &self.subject);
        let sent = self
            .agent
            .post(&sub.endpoint)
            .set("Authorization", &auth)
            .set("Content-Encoding", "aes128gcm")
            .set("Content-Type", "application/octet-stream")
            .set("TTL", &PUSH_TTL_S.to_string())
            .set("Urgency", "high")
            .send_bytes(&body);
        match sent {
            Ok(_) => log::debug!("pushed to subscription {}", sub.id),
            // RFC 8030 §7.3: 404 and 410 mean the subscription is gone for good.
            Err(ureq::Error::Status(404 | 410, _)) => {
                log::info!("push subscription {} expired; dropped", sub.id);
                self.drop_subscription(sub.id);
            }
            Err(ureq::Error::Status(code, _)) => {
                log::warn!("push service answered {code} for subscription {}", sub.id)
            }
            Err(e) => log::warn!("push to subscription {} failed: {e}", sub.id),
        }
    }

    fn drop_subscription(&self, id: i64) {
        let _ = self
            .store
            .submit(move |c| store::drop_subscription(c, id), |_| {});
    }
}

/// What the service worker shows (`assets/sw.js`): a title, a body and where a click goes.
fn payload(m: &Message) -> Vec<u8> {
    let mut body: String = m.content.chars().take(BODY_CHARS).collect();
    if body.is_empty() && !m.attachments.is_empty() {
        body = format!("sent {} file(s)", m.attachments.len());
    }
    let v = serde_json::json!({
        "title": if crate::store::dms::is_dm_name(&m.channel) {
            format!("{} (direct message)", m.author)
        } else {
            format!("{} in #{}", m.author, m.channel)
        },
        "body": body,
        "channel": m.channel,
        "id": m.id,
        "url": format!("/?channel={}&message={}", m.channel, m.id),
    });
    // 200 characters of body (at most 800 bytes) and two names of at most 32 fit a record.
    let bytes = v.to_string().into_bytes();
    debug_assert!(bytes.len() <= crypto::MAX_PLAINTEXT);
    bytes
}
