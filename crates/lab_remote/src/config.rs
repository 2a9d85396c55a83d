//! The user's remotes: `lab config minio` writes them, `lab push` and
//! `lab pull` read them.
//!
//! They live in the user's configuration folder, never in a project (a
//! project is pushed whole, and its folder may be shared): the file
//! `remotes.json` in `$XDG_CONFIG_HOME/lab`, or in `~/.config/lab` when
//! `XDG_CONFIG_HOME` is not set. It holds secret keys, so it is written with
//! mode 0600 (its folder 0700), replaced whole so it is never seen half
//! written. It also remembers the last remote, bucket and project used, which
//! `lab push` and `lab pull` take when their options are left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lab_store::user_config::WriteError;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The configuration file's name in Lab's configuration folder.
pub const CONFIG_FILE: &str = "remotes.json";
/// The largest configuration file read: a few remotes are a few hundred bytes.
const CONFIG_MAX_BYTES: u64 = 1 << 20;

/// One S3-compatible server and the credentials to use on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    /// The server's address as a URL (`http://host:port`).
    pub endpoint: String,
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
}

/// What the last push or pull used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Last {
    /// The remote's tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The project's name in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The remotes by tag.
    #[serde(default)]
    pub remotes: BTreeMap<String, Remote>,
    /// What the last push or pull used.
    #[serde(default)]
    pub last: Last,
}

/// Lab's configuration folder: `$XDG_CONFIG_HOME/lab`, else `~/.config/lab`.
pub fn config_dir() -> Result<PathBuf, Error> {
    lab_store::user_config::dir().ok_or_else(|| {
        Error::Invalid(
            "cannot tell where to keep the remotes: neither `XDG_CONFIG_HOME` nor `HOME` is set"
                .into(),
        )
    })
}

impl Config {
    /// The configuration file's path.
    pub fn path() -> Result<PathBuf, Error> {
        Ok(config_dir()?.join(CONFIG_FILE))
    }

    /// Reads the configuration; an absent file is an empty configuration.
    pub fn load() -> Result<Self, Error> {
        Self::load_from(&Self::path()?)
    }

    /// Reads the configuration at `path`.
    pub fn load_from(path: &Path) -> Result<Self, Error> {
        let bytes = match std::fs::File::open(path) {
            Ok(f) => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(f, CONFIG_MAX_BYTES + 1),
                    &mut bytes,
                )
                .map_err(|e| config_error("cannot read the remotes", &e, path))?;
                bytes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(config_error("cannot read the remotes", &e, path)),
        };
        if bytes.len() as u64 > CONFIG_MAX_BYTES {
            return Err(Error::Config {
                what: format!("the remotes file is larger than {CONFIG_MAX_BYTES} bytes"),
                path: path.to_owned(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Config {
            what: format!("the remotes file is not what `lab config` writes ({e})"),
            path: path.to_owned(),
        })
    }

    /// Writes the configuration, readable by its owner only.
    pub fn save(&self) -> Result<PathBuf, Error> {
        let path = Self::path()?;
        self.save_to(&path)?;
        Ok(path)
    }

    /// Writes the configuration to `path` (mode 0600, in a folder made with
    /// mode 0700), replacing the file whole.
    pub fn save_to(&self, path: &Path) -> Result<(), Error> {
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| config_error("cannot write the remotes", &e, path))?;
        text.push('\n');
        lab_store::user_config::write_private(path, text.as_bytes()).map_err(|e| match e {
            WriteError::Folder(e) => config_error(
                "cannot make the configuration folder",
                &e,
                path.parent().unwrap_or(Path::new(".")),
            ),
            WriteError::File(e) => config_error("cannot write the remotes", &e, path),
        })
    }

    /// The remote of `tag`.
    pub fn remote(&self, tag: &str) -> Result<&Remote, Error> {
        self.remotes.get(tag).ok_or_else(|| Error::UnknownTag {
            tag: tag.to_owned(),
            known: if self.remotes.is_empty() {
                "none".to_owned()
            } else {
                self.remotes
                    .keys()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }
}

fn config_error(what: &str, e: &dyn std::fmt::Display, path: &Path) -> Error {
    Error::Config {
        what: format!("{what} ({e})"),
        path: path.to_owned(),
    }
}

/// Checks a remote's tag: 1 to 64 letters, digits, `.`, `_` or `-`.
pub fn check_tag(tag: &str) -> Result<(), Error> {
    let ok = !tag.is_empty()
        && tag.len() <= 64
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "`--tag` must be 1 to 64 letters, digits, `.`, `_` or `-`: got `{tag}`"
        )))
    }
}

/// Turns `--endpoint` into the URL of the server: `HOST:PORT` (no scheme)
/// means plain HTTP, as the original Lab had it; `http://` and `https://`
/// URLs are taken as they are. No path, query or credentials.
pub fn parse_endpoint(endpoint: &str) -> Result<String, Error> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "`--endpoint` must be HOST:PORT (plain HTTP) or a URL like `https://HOST:PORT`: got `{endpoint}` ({why})"
        ))
    };
    let text = endpoint.trim();
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("http://{text}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be `http` or `https`"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("there is no host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a bucket or path does not belong in it"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials go in `--accesskey` and `--secretkey`"));
    }
    let host = url.host_str().unwrap_or_default();
    Ok(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// Checks a bucket name by S3's rules: 3 to 63 lowercase letters, digits,
/// `.` and `-`, starting and ending with a letter or digit.
pub fn check_bucket(bucket: &str) -> Result<(), Error> {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
        && edge(bucket.chars().next())
        && edge(bucket.chars().last());
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "`--bucket` must be a bucket name (3 to 63 lowercase letters, digits, `.` and `-`): got `{bucket}`"
        )))
    }
}

/// Checks a project's name in a bucket: one folder name, no path.
pub fn check_project_name(option: &str, name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "`{option}` must be the name of a folder, not a path: got `{name}`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            parse_endpoint("minio.example:9000").unwrap(),
            "http://minio.example:9000"
        );
        assert_eq!(
            parse_endpoint("https://s3.example").unwrap(),
            "https://s3.example"
        );
        assert_eq!(
            parse_endpoint("https://s3.example/").unwrap(),
            "https://s3.example"
        );
        for bad in [
            "",
            "ftp://x:1",
            "http://",
            "host:notaport",
            "http://h:1/bucket",
            "http://u:p@h:1",
        ] {
            let e = parse_endpoint(bad).unwrap_err().to_string();
            assert!(e.starts_with("`--endpoint` must be"), "{bad}: {e}");
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }

    #[test]
    fn names() {
        check_bucket("lab-runs.1").unwrap();
        for bad in ["ab", "Lab", "-ab", "ab-", "a_b", &"a".repeat(64)] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
        check_tag("minio_2").unwrap();
        assert!(check_tag("a b").is_err());
        check_project_name("--project", "iris").unwrap();
        for bad in ["", ".", "..", "a/b", "/abs", "../up"] {
            assert!(check_project_name("--project", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn saved_file_is_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg").join(CONFIG_FILE);
        let mut config = Config::default();
        config.remotes.insert(
            "minio".into(),
            Remote {
                endpoint: "http://127.0.0.1:9000".into(),
                access_key: "AK".into(),
                secret_key: "SK".into(),
            },
        );
        config.save_to(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(Config::load_from(&path).unwrap(), config);
        assert_eq!(
            Config::load_from(&dir.path().join("none")).unwrap(),
            Config::default()
        );
        std::fs::write(&path, "{").unwrap();
        assert!(
            Config::load_from(&path)
                .unwrap_err()
                .to_string()
                .contains("not what `lab config` writes")
        );
    }
}
