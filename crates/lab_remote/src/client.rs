//! Talking to the bucket: the S3 client, and its errors in the user's terms.

use std::time::Duration;

use futures_util::TryStreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{BackoffConfig, ClientOptions, ObjectStore as _, RetryConfig};

use crate::Error;
use crate::config::Remote;

/// A bucket on a remote, as a push or pull uses it.
#[derive(Clone)]
pub struct Bucket {
    /// The remote's tag, for messages.
    pub tag: String,
    /// The server's URL, for messages.
    pub endpoint: String,
    /// The access key id, for messages (never the secret).
    pub access_key: String,
    /// The bucket's name.
    pub name: String,
    /// The client.
    pub store: std::sync::Arc<AmazonS3>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("tag", &self.tag)
            .field("endpoint", &self.endpoint)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Bucket {
    /// A client for `bucket` on the remote `tag`. Nothing is sent yet.
    pub fn new(tag: &str, remote: &Remote, bucket: &str) -> Result<Self, Error> {
        let store = AmazonS3Builder::new()
            // First: the client options replace what `with_allow_http` sets.
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_mins(5)),
            )
            .with_endpoint(&remote.endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_bucket_name(bucket)
            // S3-compatible servers take any region; AWS itself names the
            // right one in its answer when it differs.
            .with_region("us-east-1")
            .with_access_key_id(&remote.access_key)
            .with_secret_access_key(&remote.secret_key)
            // A wrong address should fail in seconds, not after the default
            // three minutes of retries; a transient error is still retried.
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: 4,
                retry_timeout: Duration::from_mins(1),
            })
            .build()
            .map_err(|e| {
                Error::Invalid(format!(
                    "cannot use remote `{tag}` ({}) with bucket `{bucket}`: {e}",
                    remote.endpoint
                ))
            })?;
        Ok(Self {
            tag: tag.to_owned(),
            endpoint: remote.endpoint.clone(),
            access_key: remote.access_key.clone(),
            name: bucket.to_owned(),
            store: std::sync::Arc::new(store),
        })
    }

    /// `s3://bucket/key`, for messages.
    #[must_use]
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    /// Turns an error of the client into one that says what to do.
    #[must_use]
    pub fn error(&self, doing: &str, e: &object_store::Error) -> Error {
        let text = with_causes(e);
        let has = |needle: &str| text.contains(needle);
        let at = format!("remote `{}` ({})", self.tag, self.endpoint);
        if has("NoSuchBucket") {
            return Error::Remote(format!(
                "`--bucket` names a bucket that does not exist on {at}: `{}`\n\nhint: make it first (`aws s3 mb s3://{}` or `mc mb`), or check the name",
                self.name, self.name
            ));
        }
        if has("AccessDenied") {
            return Error::Remote(format!(
                "{at} denied access key `{}` access to bucket `{}` while {doing} ({})\n\nhint: check that the key may read and write the bucket",
                self.access_key,
                self.name,
                s3_reason(&text)
            ));
        }
        if has("InvalidAccessKeyId")
            || has("SignatureDoesNotMatch")
            || has("NotSignedUp")
            || matches!(
                e,
                object_store::Error::Unauthenticated { .. }
                    | object_store::Error::PermissionDenied { .. }
            )
        {
            return Error::Remote(format!(
                "{at} refused the credentials of access key `{}` while {doing} ({})\n\nhint: set them again with `lab config minio --tag {} --endpoint ... --accesskey KEY --secretkey SECRET`",
                self.access_key,
                s3_reason(&text),
                self.tag
            ));
        }
        if has("error sending request") || has("Connection refused") || has("timed out") {
            return Error::Remote(format!(
                "cannot reach {at} while {doing}: {}\n\nhint: check the endpoint with `lab config minio --tag {} --endpoint HOST:PORT ...`, and that the server is running",
                root_cause(e),
                self.tag
            ));
        }
        Error::Remote(format!(
            "{at} failed while {doing} in bucket `{}`: {}",
            self.name,
            s3_reason(&text)
        ))
    }

    /// Lists the keys under `prefix` with their sizes.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, Error> {
        let prefix_key = key(prefix)?;
        self.store
            .list(Some(&prefix_key))
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect()
            .await
            .map_err(|e| self.error("listing the bucket", &e))
    }

    /// The names of the projects in the bucket (its top-level folders that
    /// hold a manifest).
    pub async fn projects(&self) -> Result<Vec<String>, Error> {
        let listing = self
            .store
            .list_with_delimiter(None)
            .await
            .map_err(|e| self.error("listing the bucket", &e))?;
        Ok(listing
            .common_prefixes
            .iter()
            .map(ToString::to_string)
            .collect())
    }

    /// The object at `key`, or `None` when there is none.
    pub async fn get_small(&self, key: &str, max: usize) -> Result<Option<Vec<u8>>, Error> {
        use object_store::ObjectStoreExt as _;
        let k = crate::client::key(key)?;
        match self.store.get(&k).await {
            Ok(r) => {
                if r.meta.size > max as u64 {
                    return Err(Error::BadRemoteData(format!(
                        "`{}` is {} bytes, more than the {max} a manifest may be",
                        self.url(key),
                        r.meta.size
                    )));
                }
                let bytes = r
                    .bytes()
                    .await
                    .map_err(|e| self.error(&format!("reading `{key}`"), &e))?;
                Ok(Some(bytes.to_vec()))
            }
            // A missing bucket is also "not found": tell the two apart.
            Err(e @ object_store::Error::NotFound { .. })
                if !e.to_string().contains("NoSuchBucket") =>
            {
                Ok(None)
            }
            Err(e) => Err(self.error(&format!("reading `{key}`"), &e)),
        }
    }
}

/// The object key `text`, as it is: a project's name goes into the bucket
/// unencoded (`Key::from` would percent-encode `#`, `%` and every non-ASCII
/// letter), so other tools see the folder's name.
pub fn key(text: &str) -> Result<Key, Error> {
    Key::parse(text).map_err(|e| Error::Invalid(format!("`{text}` cannot be an object key: {e}")))
}

/// The error and what caused it, down to the root: the client's own text
/// often stops at "HTTP error" and keeps the reason in its sources.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut at = e.source();
    while let Some(cause) = at {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        at = cause.source();
    }
    text
}

/// What the innermost cause of an error says ("Connection refused").
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut at = e;
    while let Some(cause) = at.source() {
        at = cause;
    }
    at.to_string()
}

/// The S3 error code an answer carries (`<Code>SignatureDoesNotMatch</Code>`)
/// in backticks, else the client's first line.
fn s3_reason(text: &str) -> String {
    text.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map_or_else(
            || text.lines().next().unwrap_or(text).to_owned(),
            |(code, _)| format!("`{code}`"),
        )
}
