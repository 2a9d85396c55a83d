//! Tokens: made by `lab server token create`, shown once, kept only as the
//! SHA-256 of their text. A token has a role (what it may do) and may be
//! bound to one project (then it sees no other).

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

use crate::db;
use crate::error::ApiError;

/// What a token may do: each role may do what the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read runs and blobs.
    Reader,
    /// Also send journals, heartbeats, blobs and file lists.
    Writer,
    /// Also see every project.
    Admin,
}

impl Role {
    /// Its name, as given to `--role`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    /// The role named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "reader" => Some(Role::Reader),
            "writer" => Some(Role::Writer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A token as listed (never its text).
#[derive(Clone, Debug, serde::Serialize)]
pub struct TokenInfo {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: &'static str,
    /// The one project it may use, if bound to one.
    pub project: Option<String>,
    /// When it was made, in nanoseconds since the Unix epoch.
    pub created_nanos: i64,
    /// When it was revoked, if it was.
    pub revoked_nanos: Option<i64>,
}

/// Who a request comes from: its token's name, role and project.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The one project it may use, if bound to one.
    pub project: Option<String>,
}

impl Caller {
    /// Refuses a token that may not use `project`, as if there were no such
    /// project (a token never learns which other projects exist), and one
    /// whose role is below `role`.
    pub(crate) fn may(&self, role: Role, project: &str) -> Result<(), ApiError> {
        if self.project.as_deref().is_some_and(|p| p != project) {
            return Err(ApiError::NotFound(format!("no project `{project}`")));
        }
        self.may_do(role)
    }

    /// Refuses a token whose role is below `role`.
    pub(crate) fn may_do(&self, role: Role) -> Result<(), ApiError> {
        if self.role < role {
            return Err(ApiError::Forbidden(format!(
                "token `{}` is a {} token; this takes a {} token",
                self.name,
                self.role.as_str(),
                role.as_str()
            )));
        }
        Ok(())
    }
}

/// The SHA-256 of `text`, in lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Bytes in lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Whether `name` may name a project: `[A-Za-z0-9._-]{1,100}`, and not `.`
/// or `..`.
#[must_use]
pub fn valid_project(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name != "."
        && name != ".."
}

/// Makes a token in the database at `url`, and returns its text: 32 random
/// bytes in hex after `lab_`. Only its hash is kept.
pub fn create(
    url: &str,
    name: &str,
    role: Role,
    project: Option<&str>,
) -> Result<String, ApiError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ApiError::BadRequest(format!(
            "`--name` must be 1 to 200 characters: got `{name}`"
        )));
    }
    if let Some(p) = project
        && !valid_project(p)
    {
        return Err(ApiError::BadRequest(format!(
            "`--project` must be 1 to 100 letters, digits, `.`, `_` or `-`: got `{p}`"
        )));
    }
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)
        .map_err(|e| ApiError::Internal(format!("no random bytes from the system: {e}")))?;
    let token = format!("lab_{}", hex(&random));
    let mut client = db::connect(url)?;
    db::migrate(&mut client)?;
    let inserted = client.execute(
        "INSERT INTO lab_team.tokens (name, role, project, sha256, created_nanos)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        &[
            &name,
            &role.as_str(),
            &project,
            &sha256_hex(token.as_bytes()),
            &lab_types::now_nanos(),
        ],
    )?;
    if inserted == 0 {
        return Err(ApiError::Conflict(format!(
            "a token named `{name}` exists already (revoked tokens keep their names)\n\nhint: choose another name, or see `lab server token list`"
        )));
    }
    Ok(token)
}

/// Every token, oldest first.
pub fn list(url: &str) -> Result<Vec<TokenInfo>, ApiError> {
    let mut client = db::connect(url)?;
    db::migrate(&mut client)?;
    let rows = client.query(
        "SELECT name, role, project, created_nanos, revoked_nanos FROM lab_team.tokens ORDER BY id",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| TokenInfo {
            name: r.get(0),
            role: Role::parse(r.get(1)).map_or("unknown", Role::as_str),
            project: r.get(2),
            created_nanos: r.get(3),
            revoked_nanos: r.get(4),
        })
        .collect())
}

/// Revokes token `name`: every request with it is refused from now on.
/// Returns whether it was valid until now.
pub fn revoke(url: &str, name: &str) -> Result<bool, ApiError> {
    let mut client = db::connect(url)?;
    db::migrate(&mut client)?;
    let row = client.query_opt(
        "SELECT revoked_nanos FROM lab_team.tokens WHERE name = $1",
        &[&name],
    )?;
    let Some(row) = row else {
        return Err(ApiError::NotFound(format!(
            "no token named `{name}`\n\nhint: `lab server token list` lists them"
        )));
    };
    if row.get::<_, Option<i64>>(0).is_some() {
        return Ok(false);
    }
    client.execute(
        "UPDATE lab_team.tokens SET revoked_nanos = $2 WHERE name = $1 AND revoked_nanos IS NULL",
        &[&name, &lab_types::now_nanos()],
    )?;
    Ok(true)
}

/// The caller a token's text names, if it is a token and not revoked.
pub(crate) fn caller(
    client: &mut postgres::Client,
    token: &str,
) -> Result<Option<Caller>, ApiError> {
    let row = client.query_opt(
        "SELECT name, role, project FROM lab_team.tokens WHERE sha256 = $1 AND revoked_nanos IS NULL",
        &[&sha256_hex(token.as_bytes())],
    )?;
    Ok(row.and_then(|r| {
        Some(Caller {
            name: r.get(0),
            role: Role::parse(r.get(1))?,
            project: r.get(2),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_checked() {
        for good in ["a", "my-project_2.0", &"x".repeat(100)] {
            assert!(valid_project(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(101)] {
            assert!(!valid_project(bad), "{bad}");
        }
    }

    #[test]
    fn roles_include_the_ones_below() {
        let c = Caller {
            name: "t".into(),
            role: Role::Writer,
            project: Some("p".into()),
        };
        assert!(c.may(Role::Reader, "p").is_ok());
        assert!(c.may(Role::Writer, "p").is_ok());
        assert!(matches!(
            c.may(Role::Admin, "p"),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            c.may(Role::Reader, "q"),
            Err(ApiError::NotFound(_))
        ));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
