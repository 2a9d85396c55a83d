//! Which team server runs go to, and the token to show it: `lab login`
//! writes them, every run and `lab sync` read them.
//!
//! They live in the user's configuration folder, never in a project: the
//! file `server.json` in `$XDG_CONFIG_HOME/lab`, or in `~/.config/lab` when
//! `XDG_CONFIG_HOME` is not set. The token is a secret, so the file is
//! written with mode 0600 (its folder 0700) and replaced whole, never seen
//! half written. `LAB_SERVER` and `LAB_TOKEN` override what the file says.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use lab_store::user_config::WriteError;
use serde::{Deserialize, Serialize};

use super::Error;

/// The file in Lab's configuration folder that names the server.
pub const SERVER_FILE: &str = "server.json";
/// The variable that names the server, over the file.
pub const SERVER_VAR: &str = "LAB_SERVER";
/// The variable that holds the token, over the file.
pub const TOKEN_VAR: &str = "LAB_TOKEN";
/// A URL and a token are a few hundred bytes; a larger file is not ours.
const MAX_BYTES: u64 = 1 << 16;

/// A team server and the token to use on it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConfig {
    /// The server's base URL (`https://lab.example:8080`), without a
    /// trailing slash; the API is under `/api/v1` of it.
    pub url: String,
    /// The bearer token.
    pub token: String,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A token never goes into a log or an error message.
        f.debug_struct("ServerConfig")
            .field("url", &self.url)
            .field("token", &"<hidden>")
            .finish()
    }
}

/// Lab's configuration folder: `$XDG_CONFIG_HOME/lab`, else `~/.config/lab`.
pub fn config_dir() -> Result<PathBuf, Error> {
    lab_store::user_config::dir().ok_or_else(|| {
        Error::Invalid(
            "cannot tell where to keep the server's address: neither `XDG_CONFIG_HOME` nor `HOME` is set"
                .into(),
        )
    })
}

/// The server file's path.
pub fn server_file() -> Result<PathBuf, Error> {
    Ok(config_dir()?.join(SERVER_FILE))
}

/// The server runs go to: the file as `lab login` wrote it, with
/// `LAB_SERVER` and `LAB_TOKEN` over it. `None` when no server is named, or
/// a server but no token.
pub fn current() -> Result<Option<ServerConfig>, Error> {
    resolve(&server_file()?, |name| std::env::var(name).ok())
}

/// [`current`] with the server file at `path` and the variables read by
/// `var`. A variable set to nothing (or spaces) counts as not set.
pub fn resolve(
    path: &Path,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<ServerConfig>, Error> {
    let var = |name| var(name).filter(|v: &String| !v.trim().is_empty());
    let stored = load_from(path)?;
    let url = match var(SERVER_VAR) {
        Some(url) => Some(parse_url(SERVER_VAR, &url)?),
        None => stored.as_ref().map(|s| s.url.clone()),
    };
    let token = var(TOKEN_VAR)
        .map(|t| t.trim().to_owned())
        .or_else(|| stored.map(|s| s.token));
    Ok(url
        .zip(token)
        .map(|(url, token)| ServerConfig { url, token }))
}

/// Reads the server file at `path`; `None` when there is none.
pub fn load_from(path: &Path) -> Result<Option<ServerConfig>, Error> {
    let bad = |what: String| Error::Config {
        what,
        path: path.to_owned(),
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(format!("cannot read the server file ({e})"))),
    };
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("cannot read the server file ({e})")))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(bad(format!(
            "the server file is larger than {MAX_BYTES} bytes"
        )));
    }
    let config: ServerConfig = serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!(
            "the server file is not what `lab login` writes ({e})"
        ))
    })?;
    Ok(Some(config))
}

/// Writes `config` to `path` with mode 0600, in a folder made with mode
/// 0700, replacing the file whole.
pub fn save_to(config: &ServerConfig, path: &Path) -> Result<(), Error> {
    let bad = |what: &str, e: &dyn std::fmt::Display, at: &Path| Error::Config {
        what: format!("{what} ({e})"),
        path: at.to_owned(),
    };
    let mut text = serde_json::to_string_pretty(config)
        .map_err(|e| bad("cannot write the server file", &e, path))?;
    text.push('\n');
    // The file holds the token: only its owner may read it.
    lab_store::user_config::write_private(path, text.as_bytes()).map_err(|e| match e {
        WriteError::Folder(e) => bad(
            "cannot make the configuration folder",
            &e,
            path.parent().unwrap_or(Path::new(".")),
        ),
        WriteError::File(e) => bad("cannot write the server file", &e, path),
    })
}

/// Removes the server file at `path`; whether there was one.
pub fn remove(path: &Path) -> Result<bool, Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::Config {
            what: format!("cannot remove the server file ({e})"),
            path: path.to_owned(),
        }),
    }
}

/// Checks a server's URL, given as `argument`: `http://` or `https://`, a
/// host, an optional port and path prefix; no query, no credentials.
/// Returns it without a trailing slash.
pub fn parse_url(argument: &str, text: &str) -> Result<String, Error> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "`{argument}` must be the server's URL, like `https://lab.example:8080`: got `{text}` ({why})"
        ))
    };
    let t = text.trim();
    let rest = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
        .ok_or_else(|| bad("it must start with `http://` or `https://`"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(bad("there is no host"));
    }
    if host.contains('@') {
        return Err(bad(
            "credentials do not belong in it: the token is asked for",
        ));
    }
    if rest.contains(['?', '#']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("a query, fragment or space does not belong in it"));
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && !host.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(bad("the port is not a number from 0 to 65535"));
    }
    Ok(t.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn sample() -> ServerConfig {
        ServerConfig {
            url: "http://127.0.0.1:8080".into(),
            token: "secret-token".into(),
        }
    }

    #[test]
    fn saved_file_is_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg").join(SERVER_FILE);
        save_to(&sample(), &path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(load_from(&path).unwrap(), Some(sample()));
        // A file made by hand with loose bits is made private when replaced.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        save_to(&sample(), &path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Nothing is left beside it.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [SERVER_FILE]);
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
        assert_eq!(load_from(&path).unwrap(), None);
    }

    #[test]
    fn a_damaged_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SERVER_FILE);
        std::fs::write(&path, "{").unwrap();
        let e = load_from(&path).unwrap_err().to_string();
        assert!(e.contains("not what `lab login` writes"), "{e}");
        assert!(e.ends_with(&path.display().to_string()), "{e}");
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("secret-token"), "{text}");
    }

    #[test]
    fn variables_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SERVER_FILE);
        let none = |_: &str| None;
        assert_eq!(resolve(&path, none).unwrap(), None);
        save_to(&sample(), &path).unwrap();
        assert_eq!(resolve(&path, none).unwrap(), Some(sample()));
        let vars = |server: Option<&'static str>, token: Option<&'static str>| {
            move |name: &str| match name {
                SERVER_VAR => server.map(str::to_owned),
                TOKEN_VAR => token.map(str::to_owned),
                _ => None,
            }
        };
        let got = resolve(&path, vars(Some("https://other.example/"), None)).unwrap();
        assert_eq!(
            got.as_ref().map(|c| c.url.as_str()),
            Some("https://other.example")
        );
        assert_eq!(got.map(|c| c.token), Some("secret-token".to_owned()));
        let got = resolve(&path, vars(None, Some("t2"))).unwrap().unwrap();
        assert_eq!(
            (got.url.as_str(), got.token.as_str()),
            ("http://127.0.0.1:8080", "t2")
        );
        // Set to nothing is not set.
        assert_eq!(
            resolve(&path, vars(Some(" "), Some(""))).unwrap(),
            Some(sample())
        );
        // Without the file, both variables are needed.
        remove(&path).unwrap();
        assert_eq!(
            resolve(&path, vars(Some("http://h:1"), None)).unwrap(),
            None
        );
        let got = resolve(&path, vars(Some("http://h:1"), Some("t3")))
            .unwrap()
            .unwrap();
        assert_eq!((got.url.as_str(), got.token.as_str()), ("http://h:1", "t3"));
        let e = resolve(&path, vars(Some("h:1"), Some("t3")))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("`LAB_SERVER` must be the server's URL"),
            "{e}"
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("URL", "http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            parse_url("URL", "https://lab.example/team").unwrap(),
            "https://lab.example/team"
        );
        assert_eq!(
            parse_url("URL", "http://[::1]:80").unwrap(),
            "http://[::1]:80"
        );
        for bad in [
            "",
            "lab.example:8080",
            "ftp://x",
            "http://",
            "http://u:p@h",
            "http://h:port",
            "http://h/?q=1",
        ] {
            let e = parse_url("URL", bad).unwrap_err().to_string();
            assert!(
                e.starts_with("`URL` must be the server's URL"),
                "{bad}: {e}"
            );
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }
}
