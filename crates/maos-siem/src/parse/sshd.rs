//! OpenSSH server logs (auth.log, secure, journal exports), judged as fail2ban's `sshd`
//! filter judges them.
//!
//! fail2ban's filter is the reference for what counts as a failure, including its
//! multi-line rules: lines of one sshd process (`host sshd[pid]`) share state, so a failure
//! logged without an address ("Disconnecting: Too many authentication failures") is
//! reported once a later line of the same process names the address, "helper" lines
//! (`Connection from`, failed public keys of valid users, PAM failures) only remember the
//! address and user, a successful login forgets them, and a helper line that names a second
//! user for the same connection counts as a failure (switching users is an attack sign).
//! The [`SshdMode`] selects fail2ban's `normal`, `ddos`, `extra` or `aggressive` rule sets.

use std::collections::HashMap;

use maos_core::Timestamp;

use super::host::{Host, parse_host, parse_host_port};
use super::syslog::{TimeContext, parse_syslog};

/// Which of fail2ban's sshd rule sets applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SshdMode {
    /// Authentication failures only.
    #[default]
    Normal,
    /// Plus connection-level abuse: missing identification, kex failures, pre-auth closes.
    Ddos,
    /// Plus negotiation failures and pre-auth disconnects of named users.
    Extra,
    /// `ddos` and `extra` together.
    Aggressive,
}

impl SshdMode {
    fn ddos(self) -> bool {
        matches!(self, Self::Ddos | Self::Aggressive)
    }
    fn extra(self) -> bool {
        matches!(self, Self::Extra | Self::Aggressive)
    }
}

/// What a reported sshd line was about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SshdKind {
    /// `Failed password|keyboard-interactive|... for USER from HOST`.
    FailedAuthentication,
    /// `Authentication failure for USER from HOST`, PAM "user not known".
    PamFailure,
    /// `Invalid user USER from HOST`.
    InvalidUser,
    RootLoginRefused,
    /// Refused by AllowUsers, DenyUsers, AllowGroups, DenyGroups or a locked account.
    UserNotAllowed,
    RefusedConnect,
    /// Client disconnected with an authentication failure reason.
    AuthFailDisconnect,
    TooManyAuthenticationFailures,
    ChangeOfUsername,
    /// A second user name tried on one connection (PAM or public key helpers).
    UserSwitch,
    /// Connection closed, reset or disconnected before authentication.
    PreauthDisconnect,
    /// Missing or bad SSH identification, kex or protocol failures (ddos mode).
    ProtocolAbuse,
    /// No common cipher, MAC, key exchange or authentication method (extra mode).
    NegotiationFailure,
    /// `Accepted METHOD for USER from HOST`.
    Accepted,
}

/// One sshd finding: a failure to count, or a successful login.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SshdEvent {
    pub time: Timestamp,
    /// The host that wrote the log line.
    pub logged_by: Option<String>,
    pub pid: Option<String>,
    /// The remote end.
    pub remote: Host,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub kind: SshdKind,
    /// Attempts this finding stands for (helpers seen before it plus itself).
    pub attempts: u32,
    /// Whether fail2ban would count this line as a failure. `Accepted` logins are reported
    /// with `failure = false` unless the connection switched users before.
    pub failure: bool,
}

/// A remote host and the port the line gave with it.
type HostPort = (Host, Option<u16>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Fail,
    NoFail,
    Gained,
}

#[derive(Debug)]
struct Classified {
    role: Role,
    kind: SshdKind,
    forget: bool,
    host: Option<HostPort>,
    user: Option<String>,
}

impl Classified {
    fn new(role: Role, kind: SshdKind) -> Self {
        Self {
            role,
            kind,
            forget: false,
            host: None,
            user: None,
        }
    }
    fn host(mut self, host: Option<HostPort>) -> Self {
        self.host = host;
        self
    }
    fn user(mut self, user: Option<&str>) -> Self {
        self.user = user.map(str::to_owned);
        self
    }
    fn forget(mut self) -> Self {
        self.forget = true;
        self
    }
}

#[derive(Debug, Default)]
struct Connection {
    host: Option<HostPort>,
    users: Vec<String>,
    pending_helpers: u32,
    pending_failure: Option<(SshdKind, Option<String>, u32)>,
    last_seen: i64,
}

/// Connections tracked at once; the stalest are dropped beyond this.
const MAX_CONNECTIONS: usize = 65_536;
/// A connection silent for this long is forgotten.
const CONNECTION_IDLE_SECS: i64 = 600;
const MAX_USERS_PER_CONNECTION: usize = 64;

/// A stateful sshd log reader: feed lines in order, get findings.
#[derive(Debug)]
pub struct SshdParser {
    mode: SshdMode,
    time: TimeContext,
    connections: HashMap<String, Connection>,
}

impl SshdParser {
    pub fn new(mode: SshdMode, time: TimeContext) -> Self {
        Self {
            mode,
            time,
            connections: HashMap::new(),
        }
    }

    pub fn mode(&self) -> SshdMode {
        self.mode
    }

    /// Update the reference time used to complete RFC 3164 stamps.
    pub fn set_now(&mut self, now: Timestamp) {
        self.time.now = now;
    }

    /// Number of connections whose state is held.
    pub fn tracked_connections(&self) -> usize {
        self.connections.len()
    }

    /// Read one line; `None` when it is not an sshd line, or an sshd line that reports
    /// nothing by itself.
    pub fn feed(&mut self, line: &str) -> Option<SshdEvent> {
        let line = line.trim_end_matches(['\r', '\n']);
        let msg = parse_syslog(line, &self.time).ok()?;
        let app = msg.app_name?;
        if app != "sshd" && !app.starts_with("sshd-") {
            return None;
        }

        let mut content = msg.message;
        // Solaris prefix: `[ID 800047 auth.info] `.
        if let Some(rest) = content.strip_prefix("[ID ")
            && let Some((_, after)) = rest.split_once("] ")
        {
            content = after;
        }
        for pref in ["error: ", "fatal: "] {
            if let Some(rest) = content.strip_prefix(pref) {
                content = rest.strip_prefix("PAM: ").unwrap_or(rest);
                break;
            }
        }

        let classified = classify(content, self.mode)?;
        let key = format!(
            "{}\u{0}{}\u{0}{}",
            msg.hostname.unwrap_or(""),
            app,
            msg.proc_id.unwrap_or("")
        );
        let logged_by = msg.hostname.map(str::to_owned);
        let pid = msg.proc_id.map(str::to_owned);
        Some(self.apply(key, classified, msg.time, logged_by, pid)).flatten()
    }

    fn apply(
        &mut self,
        key: String,
        c: Classified,
        time: Timestamp,
        logged_by: Option<String>,
        pid: Option<String>,
    ) -> Option<SshdEvent> {
        self.make_room(time);
        let conn = self.connections.entry(key.clone()).or_default();
        conn.last_seen = time.unix_seconds();
        if let Some(host) = c.host {
            conn.host = Some(host);
        }
        if let Some(user) = &c.user
            && !conn.users.contains(user)
            && conn.users.len() < MAX_USERS_PER_CONNECTION
        {
            conn.users.push(user.clone());
        }

        let mut finding: Option<(SshdKind, Option<String>, u32, bool)> = None;
        match c.role {
            Role::Fail => {
                let attempts = conn.pending_helpers + 1;
                conn.pending_helpers = 0;
                if conn.host.is_some() {
                    finding = Some((c.kind, c.user.clone(), attempts, true));
                } else {
                    let before = conn.pending_failure.as_ref().map_or(0, |p| p.2);
                    conn.pending_failure = Some((c.kind, c.user.clone(), before + attempts));
                }
            }
            Role::NoFail => {
                if c.user.is_some() {
                    conn.pending_helpers += 1;
                    if conn.users.len() > 1 && conn.host.is_some() {
                        finding = Some((
                            SshdKind::UserSwitch,
                            c.user.clone(),
                            conn.pending_helpers,
                            true,
                        ));
                        conn.pending_helpers = 0;
                    }
                }
            }
            Role::Gained => {
                let switched = conn.users.len() > 1;
                let attempts = if switched {
                    conn.pending_helpers + 1
                } else {
                    1
                };
                finding = Some((SshdKind::Accepted, c.user.clone(), attempts, switched));
            }
        }

        // A failure logged earlier without an address is reported now that it is known.
        if conn.host.is_some()
            && let Some((kind, user, attempts)) = conn.pending_failure.take()
        {
            finding = match finding {
                Some((k, u, a, true)) => Some((k, u.or(user), a + attempts, true)),
                _ => Some((kind, user, attempts, true)),
            };
        }

        let remote = conn.host.clone();
        if c.forget {
            self.connections.remove(&key);
        }

        let (kind, user, attempts, failure) = finding?;
        let (remote, port) = remote?;
        Some(SshdEvent {
            time,
            logged_by,
            pid,
            remote,
            port,
            user,
            kind,
            attempts,
            failure,
        })
    }

    fn make_room(&mut self, time: Timestamp) {
        if self.connections.len() < MAX_CONNECTIONS {
            return;
        }
        let horizon = time.unix_seconds() - CONNECTION_IDLE_SECS;
        self.connections.retain(|_, c| c.last_seen > horizon);
        if self.connections.len() >= MAX_CONNECTIONS {
            self.connections.clear();
        }
    }
}

// ---- small matchers standing in for fail2ban's regular expressions ----

fn token(s: &str) -> (&str, &str) {
    match s.find(' ') {
        Some(i) => (s.get(..i).unwrap_or(s), s.get(i..).unwrap_or("")),
        None => (s, ""),
    }
}

fn digits_prefix(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    (s.get(..n).unwrap_or(""), s.get(n..).unwrap_or(""))
}

/// `(?: (?:port \d+|on \S+)){0,2}`, greedy.
fn on_port_opt(mut s: &str) -> (Option<u16>, &str) {
    let mut port = None;
    for _ in 0..2 {
        if let Some(r) = s.strip_prefix(" port ") {
            let (d, rest) = digits_prefix(r);
            if d.is_empty() {
                break;
            }
            port = d.parse().ok();
            s = rest;
        } else if let Some(r) = s.strip_prefix(" on ") {
            let (t, rest) = token(r);
            if t.is_empty() {
                break;
            }
            s = rest;
        } else {
            break;
        }
    }
    (port, s)
}

/// `(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*$`.
fn is_suffix_end(mut s: &str) -> bool {
    for _ in 0..3 {
        if let Some(r) = s.strip_prefix(" [preauth]") {
            s = r;
        } else if let Some(r) = s.strip_prefix(" port ") {
            let (d, rest) = digits_prefix(r);
            if d.is_empty() {
                return false;
            }
            s = rest;
        } else if let Some(r) = s.strip_prefix(" on ") {
            let (t, rest) = token(r);
            if t.is_empty() {
                return false;
            }
            s = rest;
        } else {
            break;
        }
    }
    s.trim().is_empty()
}

/// `(?: ssh\d*)?`.
fn ssh_opt(s: &str) -> &str {
    match s.strip_prefix(" ssh") {
        Some(r) => digits_prefix(r).1,
        None => s,
    }
}

fn host_of(token: &str) -> Option<HostPort> {
    if token.is_empty() {
        return None;
    }
    parse_host_port(token)
}

/// Starting at the text right after ` from `: a host token, then whatever `tail_ok` accepts.
fn host_then(s: &str, tail_ok: impl Fn(&str) -> bool) -> Option<HostPort> {
    let (t, rest) = token(s);
    let (host, port) = host_of(t)?;
    tail_ok(rest).then_some((host, port.or_else(|| on_port_opt(rest).0)))
}

/// Every index of ` from ` in `s`, first to last.
fn from_positions(s: &str) -> impl DoubleEndedIterator<Item = usize> + '_ {
    s.match_indices(" from ")
        .map(|(i, _)| i)
        .collect::<Vec<_>>()
        .into_iter()
}

/// `USER from HOST TAIL` with the user greedy (`.*`): the last ` from ` that fits.
fn user_from_greedy(s: &str, tail_ok: impl Fn(&str) -> bool + Copy) -> Option<(&str, HostPort)> {
    for i in from_positions(s).rev() {
        let after = s.get(i + 6..)?;
        if let Some(h) = host_then(after, tail_ok) {
            return Some((s.get(..i)?, h));
        }
    }
    None
}

/// The same with a lazy user (`.*?`): the first ` from ` that fits. The user may be empty
/// (`Invalid user  from ...`).
fn user_from_lazy(s: &str, tail_ok: impl Fn(&str) -> bool + Copy) -> Option<(&str, HostPort)> {
    if let Some(after) = s.strip_prefix("from ")
        && let Some(h) = host_then(after, tail_ok)
    {
        return Some(("", h));
    }
    for i in from_positions(s) {
        let after = s.get(i + 6..)?;
        if let Some(h) = host_then(after, tail_ok) {
            return Some((s.get(..i)?, h));
        }
    }
    None
}

fn suffix_tail(rest: &str) -> bool {
    is_suffix_end(rest)
}

fn via_suffix_tail(rest: &str) -> bool {
    let rest = match rest.strip_prefix(" via ") {
        Some(r) => token(r).1,
        None => rest,
    };
    is_suffix_end(rest)
}

/// A single-token user must be followed by `: ` (the auth info) after host, port, ssh.
fn failed_single(r: &str) -> Option<(&str, HostPort)> {
    let (user, after) = token(r);
    let after = after.strip_prefix(" from ")?;
    let (t, tail) = token(after);
    let (host, port) = host_of(t)?;
    let (p2, tail) = on_port_opt(tail);
    ssh_opt(tail)
        .starts_with(": ")
        .then_some((user, (host, port.or(p2))))
}

/// Otherwise the rest of the line may not contain ` from ` again.
fn failed_no_more_from(tail: &str) -> bool {
    let (_, tail) = on_port_opt(tail);
    !ssh_opt(tail).contains(" from ")
}

/// fail2ban's `Failed <method> for (invalid user )?USER from HOST ...` with its defences
/// against user names that contain ` from `.
fn failed_method(rest: &str) -> Option<(&str, HostPort)> {
    if let Some(r) = rest.strip_prefix("invalid user ") {
        if let Some(found) = failed_single(r) {
            return Some(found);
        }
        // Lazy user without ` from ` in it: the first ` from ` (or an empty user).
        let first = if r.starts_with("from ") {
            Some(0)
        } else {
            r.find(" from ").map(|i| i + 1)
        };
        if let Some(i) = first {
            let after = r.get(i + 5..)?;
            let (t, tail) = token(after);
            if let Some((host, port)) = host_of(t)
                && failed_no_more_from(tail)
            {
                let user = r.get(..i.saturating_sub(1))?;
                return Some((user, (host, port.or_else(|| on_port_opt(tail).0))));
            }
        }
    }
    if let Some(found) = failed_single(rest) {
        return Some(found);
    }
    // Greedy user without a colon: the last ` from ` before the first colon.
    let colon = rest.find(':').unwrap_or(rest.len());
    for i in from_positions(rest).rev() {
        if i >= colon {
            continue;
        }
        let after = rest.get(i + 6..)?;
        let (t, tail) = token(after);
        if let Some((host, port)) = host_of(t)
            && failed_no_more_from(tail)
        {
            return Some((rest.get(..i)?, (host, port.or_else(|| on_port_opt(tail).0))));
        }
    }
    None
}

const NOT_ALLOWED: [&str; 5] = [
    " not allowed because not listed in AllowUsers",
    " not allowed because listed in DenyUsers",
    " not allowed because not in any group",
    " not allowed because a group is listed in DenyGroups",
    " not allowed because none of user's groups are listed in AllowGroups",
];

/// `Received disconnect from HOST[ port N]:\s*CODE: ...`: host, port and the text after the
/// first colon that follows them.
fn disconnect_from(s: &str) -> Option<(Host, Option<u16>, &str)> {
    let (t, rest) = token(s);
    if let Some(h) = t.strip_suffix(':') {
        let (host, port) = host_of(h)?;
        return Some((host, port, rest));
    }
    let (host, mut port) = host_of(t)?;
    let mut rest = rest;
    if let Some(r) = rest.strip_prefix(" port ") {
        let (d, r) = digits_prefix(r);
        port = d.parse().ok();
        rest = r;
    }
    let rest = rest.strip_prefix(':')?;
    Some((host, port, rest))
}

/// `(Connection (closed|reset)|Disconnected) (by|from)[ (invalid|authenticating) user U] HOST`
/// followed by a tail `tail_ok` accepts; the user is lazy, so the first host that fits wins.
fn closed_by(content: &str, tail_ok: fn(&str) -> bool) -> Option<(Option<String>, HostPort)> {
    let rest = content
        .strip_prefix("Connection closed by ")
        .or_else(|| content.strip_prefix("Connection reset by "))
        .or_else(|| content.strip_prefix("Disconnected from "))?;

    let user_rest = rest
        .strip_prefix("invalid user ")
        .or_else(|| rest.strip_prefix("authenticating user "));
    let Some(r) = user_rest else {
        let (t, after) = token(rest);
        return tail_ok(after)
            .then(|| host_of(t).map(|h| (None, h)))
            .flatten();
    };

    let mut offset = 0;
    for (i, word) in r.split(' ').enumerate() {
        let start = offset;
        offset += word.len() + 1;
        if i == 0 && !word.is_empty() {
            continue;
        }
        let after = r.get(start + word.len()..).unwrap_or("");
        if let Some(host) = host_of(word)
            && tail_ok(after)
        {
            let user = r.get(..start.saturating_sub(1)).unwrap_or("");
            return Some((Some(user.to_owned()), host));
        }
    }
    None
}

/// `(?: (?:port \d+|on \S+)){0,2}\s+\[preauth\]\s*$`
fn preauth_tail(s: &str) -> bool {
    let (_, t) = on_port_opt(s);
    t.trim_end().trim_start() == "[preauth]" && t.starts_with(char::is_whitespace)
}

/// `(?: (?:port \d+|on \S+)){0,2}\s*$`
fn plain_tail(s: &str) -> bool {
    on_port_opt(s).1.trim().is_empty()
}

/// fail2ban's normal-mode tail: the usual suffix, or nothing.
fn normal_tail(s: &str) -> bool {
    is_suffix_end(s)
}

fn classify(content: &str, mode: SshdMode) -> Option<Classified> {
    use Role::{Fail, Gained, NoFail};
    use SshdKind as K;

    // Authentication failure / error / failed.
    for lead in ["Authentication ", "authentication "] {
        if let Some(r) = content.strip_prefix(lead) {
            let r = r
                .strip_prefix("failure for ")
                .or_else(|| r.strip_prefix("error for "))
                .or_else(|| r.strip_prefix("failed for "))?;
            let (user, host) = user_from_greedy(r, via_suffix_tail)?;
            return Some(
                Classified::new(Fail, K::PamFailure)
                    .host(Some(host))
                    .user(Some(user)),
            );
        }
    }
    if let Some(r) =
        content.strip_prefix("User not known to the underlying authentication module for ")
    {
        let (user, host) = user_from_greedy(r, suffix_tail)?;
        return Some(
            Classified::new(Fail, K::InvalidUser)
                .host(Some(host))
                .user(Some(user)),
        );
    }

    if let Some(r) = content.strip_prefix("Failed ") {
        let (method, rest) = token(r);
        let rest = rest.strip_prefix(" for ")?;
        let (user, host) = failed_method(rest)?;
        let invalid = rest.starts_with("invalid user ");
        // Failed public keys of valid users are normal (several keys offered): helpers only.
        let role = if method == "publickey" && !invalid {
            NoFail
        } else {
            Fail
        };
        let user = user.strip_prefix("invalid user ").unwrap_or(user);
        return Some(
            Classified::new(role, K::FailedAuthentication)
                .host(Some(host))
                .user(Some(user)),
        );
    }

    if let Some(r) = content.strip_prefix("ROOT LOGIN REFUSED FROM ") {
        let (t, _) = token(r);
        let host = host_of(t)?;
        return Some(
            Classified::new(Fail, K::RootLoginRefused)
                .host(Some(host))
                .user(Some("ROOT")),
        );
    }

    for lead in [
        "Invalid user ",
        "invalid user ",
        "Illegal user ",
        "illegal user ",
    ] {
        if let Some(r) = content.strip_prefix(lead) {
            let (user, host) = user_from_lazy(r, suffix_tail)?;
            return Some(
                Classified::new(Fail, K::InvalidUser)
                    .host(Some(host))
                    .user(Some(user)),
            );
        }
    }

    if let Some(r) = content.strip_prefix("User ") {
        for reason in NOT_ALLOWED {
            if let Some(i) = r.find(reason) {
                let head = r.get(..i)?;
                if !is_suffix_end(r.get(i + reason.len()..)?) {
                    continue;
                }
                let (user, host) = head.rsplit_once(" from ")?;
                let host = host_of(host)?;
                return Some(
                    Classified::new(Fail, K::UserNotAllowed)
                        .host(Some(host))
                        .user(Some(user)),
                );
            }
        }
        if let Some((user, _)) = r.split_once(" not allowed because account is locked") {
            return Some(Classified::new(Fail, K::UserNotAllowed).user(Some(user)));
        }
    }

    if let Some(r) = content.strip_prefix("refused connect from ") {
        let (_, rest) = token(r);
        let inner = rest.strip_prefix(" (")?;
        let (h, _) = inner.split_once(')')?;
        let host = parse_host(h)?;
        return Some(Classified::new(Fail, K::RefusedConnect).host(Some((host, None))));
    }

    if let Some(r) = content.strip_prefix("Received disconnect from ") {
        let (host, port, rest) = disconnect_from(r)?;
        let rest = rest.trim_start();
        let host = Some((host, port));
        if let Some(reason) = rest.strip_prefix("3: ") {
            let body = reason.trim_end();
            let body = body.strip_suffix(" [preauth]").unwrap_or(body);
            if body.ends_with(": Auth fail") {
                return Some(
                    Classified::new(Fail, K::AuthFailDisconnect)
                        .host(host)
                        .forget(),
                );
            }
            return None;
        }
        if rest.starts_with("11:") {
            return Some(
                Classified::new(NoFail, K::PreauthDisconnect)
                    .host(host)
                    .forget(),
            );
        }
        if mode.extra()
            && let Some(reason) = rest.strip_prefix("14: ")
            && (reason.starts_with("No supported authentication methods available")
                || reason.starts_with("No authentication methods available"))
        {
            return Some(
                Classified::new(Fail, K::NegotiationFailure)
                    .host(host)
                    .forget(),
            );
        }
        return None;
    }

    if let Some(r) = content.strip_prefix("pam_") {
        let (module, r) = r.split_once('(')?;
        if module.is_empty() || !module.bytes().all(|b| b.is_ascii_lowercase()) {
            return None;
        }
        let r = r.strip_prefix("sshd:auth):")?;
        let r = r.trim_start().strip_prefix("authentication failure;")?;
        let mut ruser = None;
        let mut rhost = None;
        let mut user = None;
        for field in r.split_whitespace() {
            if let Some(v) = field.strip_prefix("ruser=") {
                ruser = Some(v);
            } else if let Some(v) = field.strip_prefix("rhost=") {
                rhost = Some(v);
            } else if let Some(v) = field.strip_prefix("user=") {
                user = Some(v);
            }
        }
        let host = host_of(rhost?)?;
        let who = user
            .filter(|u| !u.is_empty())
            .or(ruser.filter(|u| !u.is_empty()));
        return Some(
            Classified::new(NoFail, K::PamFailure)
                .host(Some(host))
                .user(who),
        );
    }

    if let Some(r) = content.strip_prefix("maximum authentication attempts exceeded for ") {
        let tail = |t: &str| {
            let (_, t) = on_port_opt(t);
            is_suffix_end(ssh_opt(t))
        };
        let (user, host) = user_from_greedy(r, tail)?;
        let user = user.strip_prefix("invalid user ").unwrap_or(user);
        return Some(
            Classified::new(Fail, K::TooManyAuthenticationFailures)
                .host(Some(host))
                .user(Some(user)),
        );
    }

    if let Some(r) = content.strip_prefix("Disconnecting ") {
        let r = r.strip_prefix("from ").unwrap_or(r);
        let r = r
            .strip_prefix("invalid user ")
            .or_else(|| r.strip_prefix("authenticating user "))?;
        let (user, r) = token(r);
        let (host_token, r) = token(r.strip_prefix(' ')?);
        let (host, port) = host_of(host_token)?;
        let (p2, r) = on_port_opt(r);
        let reason = r.strip_prefix(':')?.trim_start();
        if reason.starts_with("Change of username or service not allowed:")
            && reason.trim_end().ends_with("[preauth]")
        {
            return Some(
                Classified::new(Fail, K::ChangeOfUsername)
                    .host(Some((host, port.or(p2))))
                    .user(Some(user))
                    .forget(),
            );
        }
        return None;
    }

    if let Some(r) = content.strip_prefix("Disconnecting: Too many authentication failures") {
        let (user, tail) = match r.strip_prefix(" for ") {
            Some(u) => {
                let body = u.trim_end();
                let body = body.strip_suffix(" [preauth]").unwrap_or(body);
                let (user, _) = token(body);
                (Some(user), u.get(user.len()..).unwrap_or(""))
            }
            None => (None, r),
        };
        if !is_suffix_end(tail) {
            return None;
        }
        return Some(Classified::new(Fail, K::TooManyAuthenticationFailures).user(user));
    }

    let kind = K::PreauthDisconnect;
    if mode.ddos() {
        if let Some((user, host)) = closed_by(content, preauth_tail) {
            return Some(
                Classified::new(Fail, kind)
                    .host(Some(host))
                    .user(user.as_deref())
                    .forget(),
            );
        }
        if let Some((user, host)) = closed_by(content, plain_tail) {
            return Some(
                Classified::new(NoFail, kind)
                    .host(Some(host))
                    .user(user.as_deref())
                    .forget(),
            );
        }
    } else if mode.extra() {
        if content.starts_with("Disconnected from ")
            && let Some((Some(user), host)) = closed_by(content, preauth_tail)
        {
            return Some(
                Classified::new(Fail, kind)
                    .host(Some(host))
                    .user(Some(&user))
                    .forget(),
            );
        }
    } else if let Some((user, host)) = closed_by(content, normal_tail) {
        // Normal mode: a helper naming the address.
        return Some(
            Classified::new(NoFail, kind)
                .host(Some(host))
                .user(user.as_deref())
                .forget(),
        );
    }

    if let Some(r) = content.strip_prefix("Accepted ") {
        let (method, r) = token(r);
        if method.is_empty()
            || !method
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return None;
        }
        let r = r.strip_prefix(" for ")?;
        let (user, r) = token(r);
        let r = r.strip_prefix(" from ")?;
        let (t, _) = token(r);
        let host = host_of(t)?;
        return Some(
            Classified::new(Gained, K::Accepted)
                .host(Some(host))
                .user(Some(user))
                .forget(),
        );
    }

    if mode.ddos()
        && let Some(c) = classify_ddos(content)
    {
        return Some(c);
    }
    if mode.extra()
        && let Some(c) = classify_extra(content)
    {
        return Some(c);
    }

    if let Some(r) = content.strip_prefix("Connection from ") {
        let (t, _) = token(r);
        let host = host_of(t)?;
        return Some(Classified::new(NoFail, K::PreauthDisconnect).host(Some(host)));
    }
    None
}

fn classify_ddos(content: &str) -> Option<Classified> {
    use Role::{Fail, NoFail};
    let k = SshdKind::ProtocolAbuse;

    if let Some(r) = content.strip_prefix("Did not receive identification string from ") {
        let (t, _) = token(r);
        return Some(Classified::new(Fail, k).host(Some(host_of(t)?)));
    }
    if let Some(r) = content.strip_prefix("kex_exchange_identification: ") {
        let r = r.strip_prefix("read: ").unwrap_or(r);
        let known = [
            "client sent invalid protocol identifier",
            "Client sent invalid protocol identifier",
            "connection closed by remote host",
            "Connection closed by remote host",
            "connection reset by peer",
            "Connection reset by peer",
        ];
        return known
            .iter()
            .any(|p| r.starts_with(p))
            .then(|| Classified::new(Fail, k));
    }
    if let Some(r) = content.strip_prefix("Bad protocol version identification '") {
        let (_, after) = r.rsplit_once("' from ")?;
        let (t, _) = token(after);
        return Some(Classified::new(Fail, k).host(Some(host_of(t)?)));
    }
    if let Some(r) = content.strip_prefix("SSH: Server;Ltype: ") {
        let r = ["Authname;", "Version;", "Kex;"]
            .iter()
            .find_map(|p| r.strip_prefix(p))?;
        let r = r.strip_prefix("Remote: ")?;
        let (addr, _) = r.split_once(';')?;
        let (h, port) = addr.rsplit_once('-')?;
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return Some(Classified::new(NoFail, k).host(Some((parse_host(h)?, port.parse().ok()))));
    }
    if content.starts_with("Read from socket failed: Connection reset by peer") {
        return Some(Classified::new(Fail, k).forget());
    }
    if let Some(r) = content.strip_prefix("banner exchange: Connection from ") {
        let (t, rest) = token(r);
        let (_, rest) = on_port_opt(rest);
        let t = t.strip_suffix(':').unwrap_or(t);
        let rest = rest.strip_prefix(':').unwrap_or(rest);
        return rest
            .trim_start()
            .starts_with("invalid format")
            .then(|| host_of(t).map(|h| Classified::new(Fail, k).host(Some(h))))
            .flatten();
    }
    if let Some(r) = content.strip_prefix("ssh_dispatch_run_fatal: Connection from ") {
        let (t, rest) = token(r);
        let (port, rest) = on_port_opt(rest);
        let (host, p) = host_of(t.strip_suffix(':').unwrap_or(t))?;
        return rest
            .trim_end()
            .ends_with("[preauth]")
            .then(|| Classified::new(Fail, k).host(Some((host, port.or(p)))));
    }
    if let Some(r) = content.strip_prefix("Timeout before authentication for ") {
        let r = r.strip_prefix("connection from ").unwrap_or(r);
        let (t, rest) = token(r);
        let (port, _) = on_port_opt(rest);
        let (host, p) = host_of(t)?;
        return Some(Classified::new(Fail, k).host(Some((host, port.or(p)))));
    }
    None
}

/// `(?:\w+ (?!found\b)){0,2}\w+` followed by ` found`.
fn alg_then_found(s: &str) -> bool {
    let words: Vec<&str> = s.split(' ').take(4).collect();
    (1..=3).any(|n| {
        words.get(n).is_some_and(|w| w.starts_with("found"))
            && words.iter().take(n).all(|w| {
                !w.is_empty()
                    && *w != "found"
                    && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
    })
}

fn classify_extra(content: &str) -> Option<Classified> {
    use Role::Fail;
    let k = SshdKind::NegotiationFailure;

    if let Some(r) = content.strip_prefix("Unable to negotiate with ") {
        let (t, rest) = token(r);
        let (port, rest) = on_port_opt(rest);
        let (host, p) = host_of(t.strip_suffix(':').unwrap_or(t))?;
        let rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
        let alg = rest.strip_prefix("no matching ")?;
        return alg_then_found(alg)
            .then(|| Classified::new(Fail, k).host(Some((host, port.or(p)))));
    }
    if let Some(r) = content.strip_prefix("Unable to negotiate a ") {
        return r
            .starts_with(|c: char| c.is_alphanumeric())
            .then(|| Classified::new(Fail, k));
    }
    if let Some(r) = content.strip_prefix("no matching ") {
        let (alg, _) = r.split_once(" found:")?;
        return alg_then_found(&format!("{alg} found")).then(|| Classified::new(Fail, k));
    }
    None
}
