//! The first start: no users yet, so create `admin` with a random password.
//!
//! There is no default password anywhere. When the users file has no users, the runtime calls
//! [`ensure_initial_admin`]: it creates user `admin` (role admin) with 144 random bits as a
//! 24-character password, saves the users file, writes the password to
//! `{data_dir}/initial-admin-password` (mode 0600) and returns it for the caller to print once.
//! The file is there for whoever missed the console output; delete it once the password is
//! changed or stored elsewhere.

use crate::fsx;
use crate::secret::{Secret, base64url, random_bytes};
use crate::{Result, Role, Users};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Name of the file in `data_dir` that holds the initial admin password.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";
/// The user created on first start.
pub const INITIAL_ADMIN: &str = "admin";

/// What was created on first start.
#[derive(Debug)]
pub struct InitialAdmin {
    pub user: String,
    pub password: Secret,
    /// Where the password was also written.
    pub password_file: PathBuf,
}

/// When the users file at `users_file` has no users (or does not exist), creates user `admin`
/// with a random password, saves the users file, writes the password to
/// `{data_dir}/initial-admin-password` and returns it. `None` when there are users already:
/// nothing is touched.
pub fn ensure_initial_admin(
    users_file: &Path,
    data_dir: &Path,
    now: SystemTime,
) -> Result<Option<InitialAdmin>> {
    let mut users = Users::load(users_file)?;
    if !users.is_empty() {
        return Ok(None);
    }
    let password = base64url(&random_bytes::<18>()?);
    users.add(INITIAL_ADMIN, Role::Admin, &password, now)?;
    let password_file = data_dir.join(INITIAL_PASSWORD_FILE);
    // The password file first: if saving the users file fails, a stale password file is
    // harmless (it opens nothing), while a saved admin whose password went nowhere is a lock-out.
    fsx::write_private_atomic(&password_file, format!("{password}\n").as_bytes())?;
    users.save()?;
    Ok(Some(InitialAdmin {
        user: INITIAL_ADMIN.to_string(),
        password: Secret::new(password),
        password_file,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_first_start_creates_admin_once() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let users_file = data.join("users.json");
        let now = SystemTime::now();
        let first = ensure_initial_admin(&users_file, &data, now)
            .unwrap()
            .expect("created");
        assert_eq!(first.user, "admin");
        assert_eq!(first.password.expose().len(), 24);
        assert_eq!(first.password_file, data.join("initial-admin-password"));
        let written = std::fs::read_to_string(&first.password_file).unwrap();
        assert_eq!(written, format!("{}\n", first.password.expose()));
        let mode = std::fs::metadata(&first.password_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let users = Users::load(&users_file).unwrap();
        let p = users
            .verify_password("admin", first.password.expose())
            .unwrap();
        assert_eq!(p.role, Role::Admin);
        // The second start finds a user and changes nothing.
        let before = std::fs::read(&users_file).unwrap();
        assert!(
            ensure_initial_admin(&users_file, &data, now)
                .unwrap()
                .is_none()
        );
        assert_eq!(std::fs::read(&users_file).unwrap(), before);
    }

    #[test]
    fn existing_users_mean_no_admin_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let users_file = dir.path().join("users.json");
        let mut u = Users::load(&users_file).unwrap();
        u.add(
            "alice",
            Role::Viewer,
            "a long enough password",
            SystemTime::now(),
        )
        .unwrap();
        u.save().unwrap();
        assert!(
            ensure_initial_admin(&users_file, dir.path(), SystemTime::now())
                .unwrap()
                .is_none()
        );
        assert!(!dir.path().join(INITIAL_PASSWORD_FILE).exists());
        assert!(Users::load(&users_file).unwrap().get("admin").is_none());
    }
}
