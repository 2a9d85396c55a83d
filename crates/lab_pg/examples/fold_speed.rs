//! How fast journals fold into PostgreSQL, beside SQLite: writes `RUNS` runs
//! of `RECORDS` parameters, tags and metric points each into a new project,
//! folds them into the project's SQLite index and into the database at
//! `DATABASE_URL`, and prints the time each took and a listing's.
//!
//! ```text
//! DATABASE_URL=postgresql://postgres@127.0.0.1:55432/lab cargo run --release -p lab_pg --example fold_speed -- 1000 100
//! ```

use std::time::Instant;

use lab_journal::JournalWriter;
use lab_pg::PgIndex;
use lab_store::{Project, Selection, Store};
use lab_types::{MetricPoint, Record, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "set `DATABASE_URL` to a PostgreSQL database (postgresql://...)")?;
    let mut args = std::env::args().skip(1);
    let runs: i64 = args.next().map_or(Ok(1000), |a| a.parse())?;
    let records: i64 = args.next().map_or(Ok(100), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let (project, _) = Project::create(dir.path())?;
    for n in 0..runs {
        let (id, paths) = project.claim_run(1_000_000_000 + n * 250_000_000)?;
        let mut w = JournalWriter::create(&paths.journal)?;
        w.append(&Record::Start {
            run: id,
            time_nanos: n,
            experiment: format!("e{}", n % 7),
        })?;
        for k in 0..4 {
            w.append(&Record::MetricKey {
                key: k,
                name: format!("m{k}"),
            })?;
        }
        for i in 0..records {
            let record = match i % 4 {
                0 => Record::Param {
                    time_nanos: i,
                    key: format!("p{}", i % 10),
                    value: Value::Int(i),
                },
                1 => Record::Tag {
                    time_nanos: i,
                    key: format!("t{}", i % 3),
                    value: format!("v{i}"),
                },
                _ => Record::Metric {
                    time_nanos: i,
                    point: MetricPoint {
                        key: (i % 4) as u32,
                        step: i,
                        value: i as f64 / 10.0,
                    },
                },
            };
            w.append(&record)?;
        }
        w.close()?;
    }
    let start = Instant::now();
    let mut store = Store::open(project.clone())?;
    store.refresh()?;
    let sqlite = start.elapsed();
    let start = Instant::now();
    let mut pg = PgIndex::connect(&url, &format!("speed {}", std::process::id()))?;
    pg.fold(&project)?;
    let postgres = start.elapsed();
    let query = Selection {
        filter: Some("p4 > 3 and m2 > 5".into()),
        sort: vec!["-m2".into()],
        limit: Some(50),
        detail: lab_store::Detail::Listing,
        ..Selection::default()
    };
    let start = Instant::now();
    let listed = store.select(&query)?.len();
    let sqlite_list = start.elapsed();
    let start = Instant::now();
    let pg_listed = pg.select(&query)?.len();
    let postgres_list = start.elapsed();
    assert_eq!(listed, pg_listed);
    println!("{runs} runs of {records} records");
    println!("fold    SQLite {sqlite:>10.2?}   PostgreSQL {postgres:>10.2?}");
    println!(
        "listing SQLite {sqlite_list:>10.2?}   PostgreSQL {postgres_list:>10.2?}   ({listed} runs)"
    );
    pg.clear()?;
    Ok(())
}
