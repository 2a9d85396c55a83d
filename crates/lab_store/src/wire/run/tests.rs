use lab_types::fields::{attr, field};
use lab_types::{ErrorInfo, RunId, Status, Value};
use serde_json::json;

use super::{RunDetail, RunSummary};
use crate::{ArtifactInfo, MetricSummary, ModelInfo, RunInfo};

/// A failed run with a bit of everything: params of several types, a NaN,
/// an infinite metric, git, packages, an artifact and a model.
fn run() -> RunInfo {
    let id: RunId = "0123456789abcdef0123456789abcdef".parse().unwrap();
    let s = |t: &str| Value::Str(t.to_owned());
    RunInfo {
        id,
        short_id: "01234567".into(),
        experiment: "iris".into(),
        status: Status::Failed,
        start_nanos: 1_795_765_800_000_000_000,
        end_nanos: Some(1_795_765_801_500_000_000),
        attrs: vec![
            (attr::ARGV.into(), Value::List(vec![s("--seed"), s("1")])),
            (attr::CWD.into(), s("/home/ada")),
            (attr::GIT_BRANCH.into(), s("main")),
            (attr::GIT_COMMIT.into(), s("abc123")),
            (attr::GIT_DIRTY.into(), Value::Bool(true)),
            (attr::GROUP.into(), s("lr-sweep")),
            (attr::HOST.into(), s("box")),
            (
                attr::PACKAGES.into(),
                Value::List(vec![s("numpy==2.0"), s("local"), Value::Int(3)]),
            ),
            (attr::PARENT.into(), s("fedcba9876543210fedcba9876543210")),
            (attr::PID.into(), Value::Int(42)),
            (attr::SOURCE.into(), s("train.py")),
            (attr::USER.into(), s("ada")),
        ],
        features: vec![s("petal"), Value::Int(2)],
        params: vec![
            ("lr".into(), Value::Float(0.1)),
            ("depth".into(), Value::Int(3)),
            (
                "layers".into(),
                Value::List(vec![Value::Int(1), Value::Float(f64::NAN)]),
            ),
            ("ratio".into(), Value::Float(f64::NAN)),
            ("model".into(), Value::Repr("Forest()".into())),
            (
                "opt".into(),
                Value::Dict(vec![("b".into(), Value::Int(1)), ("a".into(), Value::Null)]),
            ),
        ],
        metrics: vec![
            MetricSummary {
                name: "loss".into(),
                last: 0.25,
                last_step: 9,
                min: Some(0.25),
                max: Some(f64::INFINITY),
                count: 10,
            },
            MetricSummary {
                name: "acc".into(),
                last: f64::NEG_INFINITY,
                last_step: 0,
                min: None,
                max: None,
                count: 1,
            },
        ],
        tags: vec![("team".into(), "vision".into())],
        artifacts: vec![ArtifactInfo {
            name: "plots".into(),
            source: "/tmp/plots".into(),
            path: Some("artifacts/plots".into()),
            files: Some(2),
            bytes: Some(10),
        }],
        models: vec![ModelInfo {
            name: "model".into(),
            path: "models/model.joblib".into(),
            format: "joblib".into(),
            class: "Forest".into(),
            library: "sklearn".into(),
            library_version: "1.0".into(),
            size: 16,
            sha256: "ab".into(),
            logged_nanos: 1_795_765_801_000_000_000,
        }],
        error: Some(ErrorInfo {
            kind: "ValueError".into(),
            message: "broken".into(),
            traceback: "Traceback ...".into(),
        }),
        damage: None,
    }
}

#[test]
fn a_summary_in_json() {
    let mut summary = RunSummary::of(run());
    summary.sort();
    let text = serde_json::to_string(&summary).unwrap();
    // Keys in name order, as the HTTP API has always written them.
    assert_eq!(
        text,
        concat!(
            r#"{"duration_s":1.5,"end_time":"2026-11-27T07:50:01.500000Z","experiment":"iris","group":"lr-sweep","host":"box","#,
            r#""id":"0123456789abcdef0123456789abcdef","metrics":{"acc":"-Infinity","loss":0.25},"#,
            r#""name":"brisk-vole-17107","#,
            r#""params":{"depth":3,"layers":[1,"NaN"],"lr":0.1,"model":"Forest()","opt":{"a":null,"b":1},"ratio":"NaN"},"#,
            r#""short_id":"01234567","source":"train.py","start_time":"2026-11-27T07:50:00.000000Z","#,
            r#""status":"failed","tags":{"team":"vision"},"user":"ada"}"#
        )
    );
    // Unsorted, as the run logged them (dicts as logged too).
    let listed = serde_json::to_string(&RunSummary::of(run()).without_listing_extras()).unwrap();
    assert!(
        listed.contains(r#""params":{"lr":0.1,"depth":3,"layers":[1,"NaN"],"ratio":"NaN","model":"Forest()","opt":{"b":1,"a":null}},"#),
        "{listed}"
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let keys: Vec<&str> = listed
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "end_time",
            "experiment",
            "group",
            "id",
            "metrics",
            "name",
            "params",
            "short_id",
            "source",
            "start_time",
            "status",
            "tags"
        ]
    );
}

#[test]
fn a_detail_in_json() {
    let mut detail = RunDetail::of(run());
    detail.sort();
    let got = serde_json::to_value(&detail).unwrap();
    assert_eq!(
        got,
        json!({
            "argv": ["--seed", "1"],
            "artifacts": [{"bytes": 10, "files": 2, "name": "plots", "path": "artifacts/plots", "source": "/tmp/plots"}],
            "attrs": {"cwd": "/home/ada"},
            "damage": null,
            "dataset": null,
            "duration_s": 1.5,
            "end_time": "2026-11-27T07:50:01.500000Z",
            "error": {"message": "broken", "traceback": "Traceback ...", "type": "ValueError"},
            "experiment": "iris",
            "features": ["petal", 2],
            "git": {"branch": "main", "commit": "abc123", "dirty": true},
            "group": "lr-sweep",
            "host": "box",
            "id": "0123456789abcdef0123456789abcdef",
            "metrics": [
                {"count": 10, "last": 0.25, "last_step": 9, "max": "Infinity", "min": 0.25, "name": "loss"},
                {"count": 1, "last": "-Infinity", "last_step": 0, "max": null, "min": null, "name": "acc"},
            ],
            "models": [{
                "class": "Forest", "format": "joblib", "library": "sklearn", "library_version": "1.0",
                "logged_time": "2026-11-27T07:50:01.000000Z", "name": "model",
                "path": "models/model.joblib", "sha256": "ab", "size": 16,
            }],
            "name": "brisk-vole-17107",
            "note": "",
            "packages": [{"name": "numpy", "version": "2.0"}, {"name": "local", "version": null}],
            "params": {"depth": 3, "layers": [1, "NaN"], "lr": 0.1, "model": "Forest()", "opt": {"a": null, "b": 1}, "ratio": "NaN"},
            "parent": "fedcba9876543210fedcba9876543210",
            "pid": 42,
            "python": null,
            "short_id": "01234567",
            "source": "train.py",
            "start_time": "2026-11-27T07:50:00.000000Z",
            "status": "failed",
            "tags": {"team": "vision"},
            "user": "ada",
        })
    );
}

#[test]
fn the_shapes_read_back() {
    let summary = RunSummary::of(run());
    let back: RunSummary = serde_json::from_str(&serde_json::to_string(&summary).unwrap()).unwrap();
    // JSON spells NaN as text: a NaN parameter reads back as the text.
    assert_eq!(back.params.get("ratio"), Some(&Value::Str("NaN".into())));
    assert_eq!(
        back.metrics.get("acc").map(|f| f.0),
        Some(f64::NEG_INFINITY)
    );
    assert_eq!(
        (back.id, back.start_time, back.status),
        (summary.id.clone(), summary.start_time, summary.status)
    );
    let listed = serde_json::to_string(&summary.without_listing_extras()).unwrap();
    let back: RunSummary = serde_json::from_str(&listed).unwrap();
    assert_eq!((back.user, back.host, back.duration_s), (None, None, None));

    let detail = RunDetail::of(run());
    let back: RunDetail = serde_json::from_str(&serde_json::to_string(&detail).unwrap()).unwrap();
    assert_eq!(back.models, detail.models);
    assert_eq!(back.metrics.len(), 2);
    assert_eq!(back.error, detail.error);
    assert_eq!(back.git, detail.git);
    assert_eq!(back.end_time, detail.end_time);
    assert_eq!(
        (back.group.as_deref(), back.parent.as_deref()),
        (Some("lr-sweep"), Some("fedcba9876543210fedcba9876543210"))
    );
    let info = back.into_info().unwrap();
    assert_eq!(info.attr_str(attr::GROUP), Some("lr-sweep"));
    assert_eq!(
        info.attr_str(attr::PARENT),
        Some("fedcba9876543210fedcba9876543210")
    );
    let info = summary.into_info().unwrap();
    assert_eq!(info.attr_str(attr::GROUP), Some("lr-sweep"));
}

#[test]
fn run_fields_are_named_as_everywhere() {
    let summary = serde_json::to_value(RunSummary::of(run())).unwrap();
    let detail = serde_json::to_value(RunDetail::of(run())).unwrap();
    for name in [
        field::ID,
        field::SHORT_ID,
        field::EXPERIMENT,
        field::STATUS,
        field::START_TIME,
        field::END_TIME,
        attr::SOURCE,
        attr::USER,
        attr::HOST,
        attr::GROUP,
    ] {
        assert!(summary.get(name).is_some(), "summary lacks `{name}`");
        assert!(detail.get(name).is_some(), "detail lacks `{name}`");
    }
}

#[test]
fn the_schemas_name_every_field_serialized() {
    use utoipa::PartialSchema;
    let keys = |v: serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    for (schema, value) in [
        (
            serde_json::to_value(RunSummary::schema()).unwrap(),
            serde_json::to_value(RunSummary::of(run())).unwrap(),
        ),
        (
            serde_json::to_value(RunDetail::schema()).unwrap(),
            serde_json::to_value(RunDetail::of(run())).unwrap(),
        ),
    ] {
        assert_eq!(keys(schema["properties"].clone()), keys(value));
    }
}

#[test]
fn a_run_read_back_from_json_is_the_run() {
    let mut original = run();
    // Every digit of a float survives the trip (1/53 is one a parser that
    // is not exact reads one ulp off).
    original.metrics[0].last = 1.0 / 53.0;
    // What JSON cannot tell apart: a NaN from its text, a value kept as its
    // `str()` from text, a package list entry that is not text.
    original
        .params
        .retain(|(k, _)| !matches!(k.as_str(), "ratio" | "layers" | "model"));
    for (k, v) in &mut original.attrs {
        if k == attr::PACKAGES
            && let Value::List(items) = v
        {
            items.retain(|p| matches!(p, Value::Str(_)));
        }
    }
    let json = serde_json::to_string(&RunDetail::of(original.clone())).unwrap();
    let back = serde_json::from_str::<RunDetail>(&json)
        .unwrap()
        .into_info()
        .unwrap();
    let mut attrs = back.attrs.clone();
    let mut want = original.attrs.clone();
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(attrs, want);
    assert_eq!(back.metrics[0].last.to_bits(), (1.0_f64 / 53.0).to_bits());
    let rest = |run: &RunInfo| {
        format!(
            "{:?}",
            RunInfo {
                attrs: Vec::new(),
                ..run.clone()
            }
        )
    };
    assert_eq!(rest(&back), rest(&original));
    assert_eq!(
        (
            back.metrics[1].last.to_bits(),
            back.metrics[0].max.map(f64::to_bits)
        ),
        (f64::NEG_INFINITY.to_bits(), Some(f64::INFINITY.to_bits()))
    );

    // A summary tells what a listing shows.
    let json = serde_json::to_string(&RunSummary::of(original.clone())).unwrap();
    let listed = serde_json::from_str::<RunSummary>(&json)
        .unwrap()
        .into_info()
        .unwrap();
    assert_eq!(listed.params, original.params);
    assert_eq!(listed.tags, original.tags);
    assert_eq!(listed.metrics[0].last.to_bits(), (1.0_f64 / 53.0).to_bits());
    assert_eq!(listed.attr_str(attr::SOURCE), Some("train.py"));
    assert!(
        serde_json::from_str::<RunSummary>(
            &json.replace("0123456789abcdef0123456789abcdef", "nope")
        )
        .unwrap()
        .into_info()
        .is_err()
    );
}
