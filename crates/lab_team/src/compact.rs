//! Journal stretches merged: each request a client sends is one object in
//! the store, so a run streamed for days would be hundreds of thousands of
//! small objects, each listed and read when the journal is read back (its
//! points, `GET .../journal`, `lab server reindex`). Every
//! [`Options::compact_every`] stretches, the run's stretches are merged
//! into objects of up to [`MERGED_MAX`] bytes.
//!
//! It runs holding the run's lock, after the stretch that triggered it is
//! stored and folded: nothing else writes the run meanwhile. A merged
//! object is written under the key of the first stretch it covers (the
//! store's put replaces an object whole). A reader chains stretches by
//! their starts and sizes from offset 0, so once the merged object is there
//! no reader that lists afterwards needs a covered stretch; the covered
//! ones are deleted by the next merge, not this one, so that a reader that
//! listed the stretches just before still finds each. Nothing acknowledged
//! is ever out of the chain, and a server killed at any point leaves only
//! covered stretches for the next merge to delete.
//!
//! [`Options::compact_every`]: crate::Options::compact_every

use object_store::ObjectStoreExt as _;

use crate::AppState;
use crate::error::ApiError;
use crate::store::{Bucket, Journal};

/// The largest object a merge makes.
pub(crate) const MERGED_MAX: u64 = 64 << 20;

/// Counts a new stretch of run `run`; once the run has
/// [`Options::compact_every`](crate::Options::compact_every) stretches
/// since its last merge, merges them. Call holding the run's lock.
pub(crate) fn stretch_added(
    s: &AppState,
    handle: &tokio::runtime::Handle,
    client: &mut postgres::Client,
    project: &str,
    run: &str,
    length: u64,
) -> Result<(), ApiError> {
    let every = s.inner.options.compact_every;
    if every == 0 {
        return Ok(());
    }
    let count: i32 = client
        .query_one(
            "INSERT INTO lab_team.journals (project, run, stretches) VALUES ($1, $2, 1)
             ON CONFLICT (project, run) DO UPDATE SET stretches = lab_team.journals.stretches + 1
             RETURNING stretches",
            &[&project, &run],
        )?
        .get(0);
    if count.cast_unsigned() < every {
        return Ok(());
    }
    let objects = handle.block_on(merge(&s.inner.bucket, project, run, length))?;
    client.execute(
        "UPDATE lab_team.journals SET stretches = $3 WHERE project = $1 AND run = $2",
        &[&project, &run, &i32::try_from(objects).unwrap_or(i32::MAX)],
    )?;
    Ok(())
}

/// Merges the stretches of run `run`'s journal (`length` bytes) into
/// objects of up to [`MERGED_MAX`] bytes, after deleting what the last
/// merge covered; returns how many objects the chain is then.
pub(crate) async fn merge(
    bucket: &Bucket,
    project: &str,
    run: &str,
    length: u64,
) -> Result<usize, ApiError> {
    let chain = bucket.stretches(Journal::Run, project, run, length).await?;
    // What the chain no longer goes through: the stretches the last merge
    // covered, and any a merge interrupted before left.
    let end = chain.last().map_or(0, |(start, size)| start + size);
    for (start, _) in bucket.all_stretches(Journal::Run, project, run).await? {
        if start < end && chain.binary_search_by_key(&start, |(s, _)| *s).is_err() {
            match bucket
                .store
                .delete(&bucket.stretch(Journal::Run, project, run, start))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut groups: Vec<Vec<(u64, u64)>> = Vec::new();
    for (start, size) in chain {
        match groups.last_mut() {
            Some(g) if g.iter().map(|(_, n)| n).sum::<u64>() + size <= MERGED_MAX => {
                g.push((start, size));
            }
            _ => groups.push(vec![(start, size)]),
        }
    }
    for group in groups.iter().filter(|g| g.len() > 1) {
        let mut bytes = Vec::with_capacity(group.iter().map(|(_, n)| *n as usize).sum());
        for (start, size) in group {
            let part = bucket
                .store
                .get_range(
                    &bucket.stretch(Journal::Run, project, run, *start),
                    0..*size,
                )
                .await?;
            bytes.extend_from_slice(&part);
        }
        bucket
            .store
            .put(
                &bucket.stretch(Journal::Run, project, run, group[0].0),
                bytes.into(),
            )
            .await?;
    }
    Ok(groups.len())
}
