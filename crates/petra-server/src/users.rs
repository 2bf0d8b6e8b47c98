//! The users file: users, their roles and password hashes, and their API tokens.
//!
//! # Format
//!
//! JSON (which is also valid YAML 1.2, so a file named `users.yaml` as in the spec's example
//! is still what its name says), pretty-printed, mode 0600:
//!
//! ```json
//! {
//!   "version": 1,
//!   "users": [
//!     {
//!       "name": "admin",
//!       "role": "admin",
//!       "password": "$argon2id$v=19$m=19456,t=2,p=1$…salt…$…hash…",
//!       "created": "2026-12-04T15:00:00.000Z",
//!       "tokens": [
//!         { "name": "scada", "role": "viewer", "sha256": "…64 hex digits…", "created": "…" }
//!       ]
//!     }
//!   ]
//! }
//! ```
//!
//! JSON rather than YAML because nobody should edit it by hand — `petra user` writes it — and
//! because the serializer we already have gives byte-for-byte stable output; reading it is
//! strict (an unknown key, a bad name, a hash that is not argon2id is an error that names the
//! file). Role names are those of [`Role`]; users are kept in the order they were added.
//!
//! Passwords are argon2id PHC strings (argon2's defaults: 19 MiB, 2 passes, 1 lane; a fresh
//! random salt each). API tokens are 256 random bits shown once as `petra_<base64url>`; only
//! their SHA-256 is stored: a token is not a password a person chose, so a fast hash is as
//! safe as a slow one, and checking a request costs microseconds instead of argon2's ~20 ms.
//!
//! The file is loaded whole, changed in memory and written back with [`Users::save`]
//! (temporary file, fsync, rename). A file its group or others may read is refused — it holds
//! password hashes that can be attacked offline.

use crate::fsx::{self, io};
use crate::secret::{Secret, hex, random_token, sha256, unhex32};
use crate::{Principal, Result, Role, ServerError};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;
use subtle::ConstantTimeEq;

/// A password has at least this many characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// And at most this many bytes (hashing is cheap for long passwords, but there is no use for
/// more, and requests stay small).
const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_NAME_LEN: usize = 64;
/// API tokens start with this, so they are recognisable (to people and to secret scanners).
const TOKEN_PREFIX: &str = "petra_";
const FORMAT_VERSION: u32 = 1;

/// What `list` shows about a user: never the hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub created: SystemTime,
    pub tokens: Vec<TokenInfo>,
}

/// What `list` shows about an API token: never the token or its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub created: SystemTime,
}

/// The users file, loaded.
#[derive(Debug)]
pub struct Users {
    path: PathBuf,
    users: Vec<User>,
}

#[derive(Debug)]
struct User {
    name: String,
    role: Role,
    /// argon2id PHC string.
    hash: String,
    created: SystemTime,
    tokens: Vec<Token>,
}

#[derive(Debug)]
struct Token {
    name: String,
    role: Role,
    digest: [u8; 32],
    created: SystemTime,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    version: u32,
    users: Vec<UserRepr>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRepr {
    name: String,
    role: Role,
    password: String,
    created: String,
    #[serde(default)]
    tokens: Vec<TokenRepr>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRepr {
    name: String,
    role: Role,
    sha256: String,
    created: String,
}

fn check_name(what: &'static str, name: &str) -> Result<()> {
    if petra_config::is_name(name) && name.len() <= MAX_NAME_LEN {
        Ok(())
    } else {
        Err(ServerError::BadName {
            what,
            name: name.to_string(),
        })
    }
}

fn check_password(password: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ServerError::WeakPassword(format!(
            "it has {chars} characters; use at least {MIN_PASSWORD_CHARS}"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ServerError::WeakPassword(format!(
            "it is longer than {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.trim().is_empty() {
        return Err(ServerError::WeakPassword("it is only spaces".into()));
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ServerError::Hash(e.to_string()))
}

fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of a random password, to spend on a login for a user that does not exist the time a
/// real check takes, so the answer time does not tell which users exist.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let pw = random_token().unwrap_or_else(|_| "decoy-password-never-matches".into());
        hash_password(&pw).unwrap_or_default()
    })
}

fn ts(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl Users {
    /// Loads the users file at `path`; a missing file is an empty set of users (saved on the
    /// first [`Users::save`]).
    pub fn load(path: &Path) -> Result<Users> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Users {
                    path: path.to_path_buf(),
                    users: Vec::new(),
                });
            }
            Err(e) => return Err(io("read", path)(e)),
        };
        let meta = std::fs::metadata(path).map_err(io("read", path))?;
        fsx::check_private(path, &meta)?;
        let bad = |reason: String| ServerError::UsersFile {
            path: path.to_path_buf(),
            reason,
        };
        let repr: FileRepr = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if repr.version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} is not known to this version of Petra (it reads {FORMAT_VERSION})",
                repr.version
            )));
        }
        let time = |s: &str, of: &str| {
            humantime::parse_rfc3339(s)
                .map_err(|_| bad(format!("`created` of {of} is not an RFC 3339 time: `{s}`")))
        };
        let mut users: Vec<User> = Vec::with_capacity(repr.users.len());
        for u in repr.users {
            check_name("user", &u.name).map_err(|e| bad(e.to_string()))?;
            if users.iter().any(|x| x.name == u.name) {
                return Err(bad(format!("user `{}` appears twice", u.name)));
            }
            match PasswordHash::new(&u.password) {
                Ok(h) if h.algorithm.as_str() == "argon2id" => {}
                _ => {
                    return Err(bad(format!(
                        "the password of user `{}` is not an argon2id hash",
                        u.name
                    )));
                }
            }
            let mut tokens: Vec<Token> = Vec::with_capacity(u.tokens.len());
            for t in u.tokens {
                let of = format!("token `{}` of user `{}`", t.name, u.name);
                check_name("token", &t.name).map_err(|e| bad(e.to_string()))?;
                if tokens.iter().any(|x| x.name == t.name) {
                    return Err(bad(format!("{of} appears twice")));
                }
                let digest = unhex32(&t.sha256).ok_or_else(|| {
                    bad(format!("`sha256` of {of} is not 64 lower-case hex digits"))
                })?;
                tokens.push(Token {
                    created: time(&t.created, &of)?,
                    name: t.name,
                    role: t.role,
                    digest,
                });
            }
            users.push(User {
                created: time(&u.created, &format!("user `{}`", u.name))?,
                name: u.name,
                role: u.role,
                hash: u.password,
                tokens,
            });
        }
        Ok(Users {
            path: path.to_path_buf(),
            users,
        })
    }

    /// Writes the users file atomically (mode 0600), creating its directory when missing.
    pub fn save(&self) -> Result<()> {
        let repr = FileRepr {
            version: FORMAT_VERSION,
            users: self
                .users
                .iter()
                .map(|u| UserRepr {
                    name: u.name.clone(),
                    role: u.role,
                    password: u.hash.clone(),
                    created: ts(u.created),
                    tokens: u
                        .tokens
                        .iter()
                        .map(|t| TokenRepr {
                            name: t.name.clone(),
                            role: t.role,
                            sha256: hex(&t.digest),
                            created: ts(t.created),
                        })
                        .collect(),
                })
                .collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&repr).expect("plain data serializes");
        bytes.push(b'\n');
        fsx::write_private_atomic(&self.path, &bytes)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn find(&self, name: &str) -> Result<&User> {
        self.users
            .iter()
            .find(|u| u.name == name)
            .ok_or_else(|| ServerError::UnknownUser(name.to_string()))
    }

    fn find_mut(&mut self, name: &str) -> Result<&mut User> {
        self.users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| ServerError::UnknownUser(name.to_string()))
    }

    /// Adds a user (in memory; [`Users::save`] writes it). Refuses a bad or taken name and a
    /// password shorter than [`MIN_PASSWORD_CHARS`]. Hashing takes a moment on purpose.
    pub fn add(&mut self, name: &str, role: Role, password: &str, now: SystemTime) -> Result<()> {
        self.check_new(name)?;
        check_password(password)?;
        let hash = hash_password(password)?;
        self.users.push(User {
            name: name.to_string(),
            role,
            hash,
            created: now,
            tokens: Vec::new(),
        });
        Ok(())
    }

    /// Whether `name` could be added: a valid name not taken yet. To ask before a password.
    pub fn check_new(&self, name: &str) -> Result<()> {
        check_name("user", name)?;
        if self.users.iter().any(|u| u.name == name) {
            return Err(ServerError::DuplicateUser(name.to_string()));
        }
        Ok(())
    }

    /// Removes a user and its API tokens; returns what it was. The last admin cannot be
    /// removed while other users remain.
    pub fn remove(&mut self, name: &str) -> Result<UserInfo> {
        let i = self
            .users
            .iter()
            .position(|u| u.name == name)
            .ok_or_else(|| ServerError::UnknownUser(name.to_string()))?;
        if self.users.len() > 1 && self.is_last_admin(name) {
            return Err(ServerError::LastAdmin(name.to_string()));
        }
        Ok(info(&self.users.remove(i)))
    }

    fn is_last_admin(&self, name: &str) -> bool {
        let mut admins = self.users.iter().filter(|u| u.role == Role::Admin);
        matches!((admins.next(), admins.next()), (Some(a), None) if a.name == name)
    }

    /// Every user, in the order they were added, without hashes.
    pub fn list(&self) -> Vec<UserInfo> {
        self.users.iter().map(info).collect()
    }

    pub fn get(&self, name: &str) -> Option<UserInfo> {
        self.find(name).ok().map(info)
    }

    /// The role of a user, if there is one — checked on every request, so nothing is copied.
    pub fn role_of(&self, name: &str) -> Option<Role> {
        self.users.iter().find(|u| u.name == name).map(|u| u.role)
    }

    pub fn set_password(&mut self, name: &str, password: &str) -> Result<()> {
        self.find(name)?;
        check_password(password)?;
        let hash = hash_password(password)?;
        self.find_mut(name)?.hash = hash;
        Ok(())
    }

    /// Changes a user's role. Its API tokens keep their role but never act above the user's.
    /// The last admin cannot be demoted.
    pub fn set_role(&mut self, name: &str, role: Role) -> Result<()> {
        self.find(name)?;
        if role != Role::Admin && self.is_last_admin(name) {
            return Err(ServerError::LastAdmin(name.to_string()));
        }
        self.find_mut(name)?.role = role;
        Ok(())
    }

    /// The user and role if `password` is the user's, else `None` — also for a user that does
    /// not exist, after the same work. Takes tens of milliseconds on purpose (argon2): call it
    /// off the async workers, and rate-limit it ([`crate::LoginLimiter`]).
    pub fn verify_password(&self, name: &str, password: &str) -> Option<Principal> {
        match self.find(name) {
            Ok(u) => password_matches(&u.hash, password).then(|| Principal {
                user: u.name.clone(),
                role: u.role,
                token: None,
            }),
            Err(_) => {
                let _ = password_matches(decoy_hash(), password);
                None
            }
        }
    }

    /// Creates an API token for `owner` with `role` (at most the owner's). Returns the token,
    /// `petra_<43 characters>`: it is shown once and only its SHA-256 is kept.
    pub fn create_token(
        &mut self,
        owner: &str,
        token_name: &str,
        role: Role,
        now: SystemTime,
    ) -> Result<Secret> {
        check_name("token", token_name)?;
        let user = self.find_mut(owner)?;
        if role > user.role {
            return Err(ServerError::RoleTooHigh {
                user: owner.to_string(),
                requested: role,
                owner: user.role,
            });
        }
        if user.tokens.iter().any(|t| t.name == token_name) {
            return Err(ServerError::DuplicateToken {
                user: owner.to_string(),
                token: token_name.to_string(),
            });
        }
        let token = format!("{TOKEN_PREFIX}{}", random_token()?);
        user.tokens.push(Token {
            name: token_name.to_string(),
            role,
            digest: sha256(token.as_bytes()),
            created: now,
        });
        Ok(Secret::new(token))
    }

    pub fn revoke_token(&mut self, owner: &str, token_name: &str) -> Result<()> {
        let user = self.find_mut(owner)?;
        let before = user.tokens.len();
        user.tokens.retain(|t| t.name != token_name);
        if user.tokens.len() == before {
            return Err(ServerError::UnknownToken {
                user: owner.to_string(),
                token: token_name.to_string(),
            });
        }
        Ok(())
    }

    /// The owner of an API token, acting with the token's role (never above the owner's
    /// current one). The digest is compared with every stored one in constant time.
    pub fn verify_token(&self, token: &str) -> Option<Principal> {
        let rest = token.strip_prefix(TOKEN_PREFIX)?;
        if rest.len() != 43 {
            return None;
        }
        let digest = sha256(token.as_bytes());
        let mut found = None;
        for u in &self.users {
            for t in &u.tokens {
                if bool::from(t.digest.ct_eq(&digest)) {
                    found = Some(Principal {
                        user: u.name.clone(),
                        role: t.role.min(u.role),
                        token: Some(t.name.clone()),
                    });
                }
            }
        }
        found
    }
}

fn info(u: &User) -> UserInfo {
    UserInfo {
        name: u.name.clone(),
        role: u.role,
        created: u.created,
        tokens: u
            .tokens
            .iter()
            .map(|t| TokenInfo {
                name: t.name.clone(),
                role: t.role,
                created: t.created,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    const PW: &str = "correct horse battery";

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn users_in(dir: &Path) -> Users {
        Users::load(&dir.join("users.json")).unwrap()
    }

    #[test]
    fn a_password_round_trips_through_the_file_and_a_wrong_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut u = users_in(dir.path());
        assert!(u.is_empty());
        u.add("alice", Role::Operator, PW, t0()).unwrap();
        u.save().unwrap();
        let text = std::fs::read_to_string(dir.path().join("users.json")).unwrap();
        assert!(text.contains("\"$argon2id$v=19$"), "{text}");
        assert!(!text.contains(PW));

        let u = users_in(dir.path());
        let p = u.verify_password("alice", PW).unwrap();
        assert_eq!(
            (p.user.as_str(), p.role, p.token),
            ("alice", Role::Operator, None)
        );
        assert_eq!(u.verify_password("alice", "correct horse battery!"), None);
        assert_eq!(u.verify_password("alice", ""), None);
        assert_eq!(u.verify_password("bob", PW), None);
        assert_eq!(
            u.list(),
            [UserInfo {
                name: "alice".into(),
                role: Role::Operator,
                created: t0(),
                tokens: vec![]
            }]
        );
    }

    #[test]
    fn duplicate_users_bad_names_and_short_passwords_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut u = users_in(dir.path());
        u.add("alice", Role::Viewer, PW, t0()).unwrap();
        let e = u.add("alice", Role::Admin, PW, t0()).unwrap_err();
        assert_eq!(e.to_string(), "user `alice` already exists");
        let e = u.add("bob", Role::Viewer, "short pass", t0()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "password refused: it has 10 characters; use at least 12"
        );
        assert!(matches!(
            u.add("bob", Role::Viewer, "", t0()),
            Err(ServerError::WeakPassword(_))
        ));
        assert!(matches!(
            u.add("bob", Role::Viewer, "            ", t0()),
            Err(ServerError::WeakPassword(_))
        ));
        // Twelve characters, not twelve bytes.
        u.add("bob", Role::Viewer, "ääääääääääää", t0()).unwrap();
        for bad in ["", "1x", "a b", "a/b", &"x".repeat(65)] {
            assert!(
                matches!(
                    u.add(bad, Role::Viewer, PW, t0()),
                    Err(ServerError::BadName { what: "user", .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(u.len(), 2);
    }

    #[test]
    fn remove_set_password_and_set_role() {
        let dir = tempfile::tempdir().unwrap();
        let mut u = users_in(dir.path());
        u.add("alice", Role::Engineer, PW, t0()).unwrap();
        u.add("bob", Role::Viewer, PW, t0()).unwrap();
        u.set_password("alice", "a new long password").unwrap();
        assert!(matches!(
            u.set_password("alice", "short"),
            Err(ServerError::WeakPassword(_))
        ));
        assert!(matches!(
            u.set_password("carol", PW),
            Err(ServerError::UnknownUser(_))
        ));
        assert_eq!(u.verify_password("alice", PW), None);
        assert!(u.verify_password("alice", "a new long password").is_some());
        u.set_role("bob", Role::Operator).unwrap();
        let removed = u.remove("alice").unwrap();
        assert_eq!(removed.role, Role::Engineer);
        // Someone must stay able to manage users.
        u.add("root", Role::Admin, PW, t0()).unwrap();
        assert!(matches!(u.remove("root"), Err(ServerError::LastAdmin(_))));
        assert!(matches!(
            u.set_role("root", Role::Engineer),
            Err(ServerError::LastAdmin(_))
        ));
        u.add("root2", Role::Admin, PW, t0()).unwrap();
        u.set_role("root", Role::Engineer).unwrap();
        u.remove("root").unwrap();
        u.remove("root2").unwrap_err();
        u.set_role("bob", Role::Admin).unwrap();
        u.remove("root2").unwrap();
        assert!(matches!(
            u.remove("alice"),
            Err(ServerError::UnknownUser(_))
        ));
        u.save().unwrap();
        let u = users_in(dir.path());
        let names: Vec<(String, Role)> = u.list().into_iter().map(|i| (i.name, i.role)).collect();
        assert_eq!(names, [("bob".to_string(), Role::Admin)]);
        // The only user may go: the next start creates a new admin.
        let mut u = u;
        u.remove("bob").unwrap();
    }

    #[test]
    fn api_tokens_verify_until_revoked_and_never_act_above_their_owner() {
        let dir = tempfile::tempdir().unwrap();
        let mut u = users_in(dir.path());
        u.add("scada", Role::Operator, PW, t0()).unwrap();
        let e = u
            .create_token("scada", "plc", Role::Admin, t0())
            .unwrap_err();
        assert!(matches!(e, ServerError::RoleTooHigh { .. }), "{e}");
        let tok = u
            .create_token("scada", "plc", Role::Operator, t0())
            .unwrap();
        let ro = u
            .create_token("scada", "grafana", Role::Viewer, t0())
            .unwrap();
        assert!(tok.expose().starts_with("petra_"));
        assert_eq!(tok.expose().len(), 6 + 43);
        assert!(matches!(
            u.create_token("scada", "plc", Role::Viewer, t0()),
            Err(ServerError::DuplicateToken { .. })
        ));
        u.save().unwrap();
        let text = std::fs::read_to_string(u.path()).unwrap();
        assert!(!text.contains(tok.expose()), "{text}");
        assert!(text.contains(&hex(&sha256(tok.expose().as_bytes()))));

        let mut u = users_in(dir.path());
        let p = u.verify_token(tok.expose()).unwrap();
        assert_eq!(
            p,
            Principal {
                user: "scada".into(),
                role: Role::Operator,
                token: Some("plc".into())
            }
        );
        assert_eq!(u.verify_token(ro.expose()).unwrap().role, Role::Viewer);
        // Wrong tokens: one character changed, no prefix, wrong length, empty.
        let mut wrong = tok.expose().to_string();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(u.verify_token(&wrong), None);
        assert_eq!(u.verify_token(&tok.expose()[6..]), None);
        assert_eq!(u.verify_token("petra_"), None);
        assert_eq!(u.verify_token(""), None);
        // A demoted owner drags the token down with it.
        u.set_role("scada", Role::Viewer).unwrap();
        assert_eq!(u.verify_token(tok.expose()).unwrap().role, Role::Viewer);
        let listed = &u.get("scada").unwrap().tokens;
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].name, "plc");

        u.revoke_token("scada", "plc").unwrap();
        assert_eq!(u.verify_token(tok.expose()), None);
        assert!(u.verify_token(ro.expose()).is_some());
        assert!(matches!(
            u.revoke_token("scada", "plc"),
            Err(ServerError::UnknownToken { .. })
        ));
        // Removing the user removes its tokens.
        u.remove("scada").unwrap();
        assert_eq!(u.verify_token(ro.expose()), None);
    }

    #[test]
    fn the_file_is_private_and_a_readable_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/users.json");
        let mut u = Users::load(&path).unwrap();
        u.add("alice", Role::Viewer, PW, t0()).unwrap();
        u.save().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary file left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["users.json"]);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Users::load(&path).unwrap_err();
        assert!(
            matches!(e, ServerError::InsecureFile { mode: 0o644, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
        // Saving puts it right.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let u = Users::load(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
        u.save().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_malformed_file_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let write = |s: &str| {
            std::fs::write(&path, s).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        let cases = [
            ("not json", "expected"),
            ("{\"version\":2,\"users\":[]}", "format version 2"),
            ("{\"version\":1,\"users\":[],\"x\":1}", "unknown field"),
            (
                "{\"version\":1,\"users\":[{\"name\":\"a\",\"role\":\"root\",\"password\":\"x\",\"created\":\"2026-01-01T00:00:00Z\"}]}",
                "unknown variant",
            ),
            (
                "{\"version\":1,\"users\":[{\"name\":\"a\",\"role\":\"viewer\",\"password\":\"plain\",\"created\":\"2026-01-01T00:00:00Z\"}]}",
                "not an argon2id hash",
            ),
        ];
        for (text, expect) in cases {
            write(text);
            let e = Users::load(&path).unwrap_err().to_string();
            assert!(e.contains(expect), "{text}: {e}");
            assert!(e.contains(&path.display().to_string()), "{e}");
        }
        write("{\"version\":1,\"users\":[]}");
        assert!(Users::load(&path).unwrap().is_empty());
    }
}
