//! Templates, schedules and incoming triggers end to end: parameters reach a real sshd as
//! environment variables only, secrets are masked everywhere, triggers run and are revoked,
//! overlap policies, and exactly-once firing with two API instances on one database.

use crate::stack::{Db, Stack};
use futures::StreamExt;
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use serde_json::{json, Value};
use std::time::Duration;

async fn call(stack: &Stack, m: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    stack.call(m, path, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn injection_values_arrive_verbatim_and_secrets_are_masked() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    stack.add_server("h", &host).await;
    let marker = std::env::temp_dir().join(format!(
        "remora-inj-{}-{}",
        std::process::id(),
        remora_domain::new_id()
    ));
    let secret = format!("s3cr3t-{}", &remora_domain::new_id()[24..]);
    let (st, t) = stack
        .post(
            "/api/v1/templates",
            json!({
                "name": "inject",
                "command": "sleep 1; printf '%s\\n' \"$REMORA_PARAM_A\" \"$REMORA_PARAM_B\" \"pw=$REMORA_PARAM_PW\" \"$GREETING\"; printf 'err %s\\n' \"$REMORA_PARAM_PW\" >&2",
                "params": [
                    {"name": "a", "type": "string", "required": true},
                    {"name": "b", "type": "text"},
                    {"name": "pw", "type": "secret", "required": true}
                ],
                "env": {"GREETING": "hi"},
                "targets": {"servers": ["h"]}
            }),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    assert_eq!(t["version"], 1);
    let a = format!("$(touch {})", marker.display());
    let b = "'; rm -rf ~";
    let (st, job) = stack
        .post(
            "/api/v1/templates/inject/run",
            json!({"params": {"a": a, "b": b, "pw": secret}}),
        )
        .await;
    assert_eq!(st, 201, "{job}");
    assert!(
        !job.to_string().contains(&secret),
        "the run reply has no secret"
    );
    let id = job["id"].as_str().unwrap().to_string();
    // Live stream: subscribed before the job prints (it sleeps 1 s first).
    let r = stack
        .http
        .get(format!("{}/api/v1/jobs/{id}/stream", stack.url))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap();
    let mut events = eventsource_stream::Eventsource::eventsource(r.bytes_stream());
    let mut live = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.next()).await {
        let ev = ev.unwrap();
        if ev.event == "output" {
            live.push_str(&ev.data);
        }
    }
    let done = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (
            &done["template_id"],
            &done["template_version"],
            &done["schedule_id"]
        ),
        (&t["id"], &json!(1), &Value::Null),
        "the job records its template and version: {done}"
    );
    assert_eq!(
        job["template_id"], t["id"],
        "the run reply carries it too: {job}"
    );
    let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    assert_eq!(
        logs["stdout"].as_str().unwrap(),
        format!("{a}\n{b}\npw=***\nhi\n"),
        "values arrive as the exact bytes given; the secret is masked"
    );
    assert_eq!(logs["stderr"], "err ***\n");
    assert!(!marker.exists(), "`$(touch …)` was not run");
    assert!(live.contains("pw=***"), "live output arrived: {live}");
    for (what, text) in [
        ("live stream", live.clone()),
        ("logs", logs.to_string()),
        ("job", done.to_string()),
        (
            "template",
            stack.get("/api/v1/templates/inject").await.to_string(),
        ),
        ("jobs list", stack.get("/api/v1/jobs").await.to_string()),
        ("audit", stack.get("/api/v1/audit").await.to_string()),
    ] {
        assert!(
            !text.contains(&secret),
            "{what} contains the secret: {text}"
        );
    }
    // At rest: the job row's params are sealed (no plain secret in the database).
    let origin = stack.store.job_origin(&id).await.unwrap().unwrap();
    assert_eq!((origin.template_version, origin.schedule_id), (1, None));
    let sealed = origin.params_enc.unwrap();
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));

    // Validation errors name the parameter; a bad one creates nothing.
    let (st, e) = stack
        .post(
            "/api/v1/templates/inject/run",
            json!({"params": {"a": "x"}}),
        )
        .await;
    assert_eq!(
        (st, e["error"]["message"].as_str().unwrap()),
        (422, "parameter `pw` is required"),
        "{e}"
    );
    let (st, e) = stack
        .post(
            "/api/v1/templates/inject/run",
            json!({"params": {"a": "x", "pw": "y", "zz": 1}}),
        )
        .await;
    assert_eq!(st, 422, "{e}");
    // An edit is a new version; the next run records it.
    let (st, t2) = call(&stack, reqwest::Method::PUT, "/api/v1/templates/inject", Some(json!({"command": "echo \"$REMORA_PARAM_N\"", "params": [{"name": "n", "type": "integer", "min": 1, "default": 2}], "targets": {"servers": ["h"]}}))).await;
    assert_eq!((st, t2["version"].as_i64()), (200, Some(2)), "{t2}");
    let (st, j2) = stack.post("/api/v1/templates/inject/run", json!({})).await;
    assert_eq!(st, 201, "{j2}");
    assert_eq!(j2["template_version"], 2, "{j2}");
    let j2id = j2["id"].as_str().unwrap();
    stack.wait_final(j2id, Duration::from_secs(30)).await;
    assert_eq!(
        stack.get(&format!("/api/v1/jobs/{j2id}/logs")).await["stdout"],
        "2\n"
    );
    assert_eq!(
        stack
            .store
            .job_origin(j2id)
            .await
            .unwrap()
            .unwrap()
            .template_version,
        2
    );
    assert_eq!(
        stack
            .get("/api/v1/templates/inject/versions")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trigger_runs_the_template_and_a_revoked_token_is_refused() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    stack.add_server("h", &host).await;
    let (st, _) = stack
        .post("/api/v1/templates", json!({"name": "ci", "command": "echo \"deploy $REMORA_PARAM_REF\"", "params": [{"name": "ref", "type": "string", "pattern": "[a-z0-9]+"}], "targets": {"servers": ["h"]}}))
        .await;
    assert_eq!(st, 201);
    let (st, tr) = stack
        .post("/api/v1/templates/ci/triggers", json!({"name": "gitlab"}))
        .await;
    assert_eq!(st, 201, "{tr}");
    let token = tr["token"].as_str().unwrap().to_string();
    let listed = stack.get("/api/v1/templates/ci/triggers").await;
    assert!(
        !listed.to_string().contains(&token),
        "the token is shown once"
    );
    let hook = |body: Value| {
        let (http, url) = (
            stack.http.clone(),
            format!("{}/api/v1/hooks/{token}", stack.url),
        );
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // No bearer token: the path's token is the credential.
    let (st, job) = hook(json!({"params": {"ref": "abc123"}})).await;
    assert_eq!(st, 201, "{job}");
    let id = job["id"].as_str().unwrap();
    stack.wait_final(id, Duration::from_secs(30)).await;
    assert_eq!(
        stack.get(&format!("/api/v1/jobs/{id}/logs")).await["stdout"],
        "deploy abc123\n"
    );
    let (st, e) = hook(json!({"params": {"ref": "$(id)"}})).await;
    assert_eq!(st, 422, "{e}");
    let (st, _) = call(
        &stack,
        reqwest::Method::DELETE,
        &format!(
            "/api/v1/templates/ci/triggers/{}",
            tr["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(st, 204);
    let (st, e) = hook(json!({"params": {"ref": "abc"}})).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{e}"
    );
    let audit = stack.get("/api/v1/audit").await.to_string();
    for action in [
        "trigger.create",
        "trigger.call",
        "trigger.revoke",
        "trigger.refused",
    ] {
        assert!(audit.contains(action), "audit has {action}");
    }
    assert!(!audit.contains(&token));
}

/// A stack without a worker whose own scheduler loop stays idle (ticks hourly), so the test
/// drives `schedules::tick` with its own clock.
async fn quiet_stack(db: Db) -> Stack {
    let cfg = remora_api::ApiConfig {
        schedule_tick: Duration::from_secs(3600),
        ..Default::default()
    };
    Stack::start_opts(db, None, cfg).await
}

/// Another API instance on the stack's database.
async fn instance(stack: &Stack) -> remora_api::AppState {
    let store = remora_store::Store::connect(&stack.db_url).await.unwrap();
    let vault = remora_store::Vault::load(None, stack.dir.path()).unwrap();
    let queue =
        remora_netqueue::Client::connect(&stack.queue_addr, Some(stack.queue_token.clone()))
            .await
            .unwrap();
    let cfg = remora_api::ApiConfig {
        schedule_tick: Duration::from_secs(3600),
        ..Default::default()
    };
    remora_api::AppState::new(store, vault, queue, cfg)
}

async fn schedule(stack: &Stack, name: &str, overlap: &str) -> (String, i64) {
    let (st, s) = stack
        .post("/api/v1/schedules", json!({"name": name, "template": "t", "cron": "* * * * *", "timezone": "Europe/Berlin", "overlap": overlap}))
        .await;
    assert_eq!(st, 201, "{s}");
    assert_eq!(s["next_runs"].as_array().unwrap().len(), 5, "{s}");
    let due = remora_domain::time::rfc3339_to_ms(s["next_due_at"].as_str().unwrap()).unwrap();
    (s["id"].as_str().unwrap().to_string(), due)
}

async fn runs(stack: &Stack, id: &str) -> Vec<(String, usize)> {
    let mut r: Vec<(String, usize)> = stack
        .get(&format!("/api/v1/schedules/{id}/runs"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap().to_string(),
                r["job_ids"].as_array().unwrap().len(),
            )
        })
        .collect();
    r.reverse();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlap_policies_skip_queue_allow() {
    let stack = quiet_stack(Db::from_env()).await;
    let inst = instance(&stack).await;
    let sid = stack.add_server_raw("h").await;
    let (st, _) = stack
        .post(
            "/api/v1/templates",
            json!({"name": "t", "command": "sleep 60", "targets": {"servers": [sid]}}),
        )
        .await;
    assert_eq!(st, 201);
    let rx = crate::hooks::Receiver::start().await;
    crate::hooks::target(&stack, "ops", &rx.url, &["schedule.skipped"]).await;
    for policy in ["skip", "queue", "allow"] {
        let (id, due) = schedule(&stack, &format!("s-{policy}"), policy).await;
        // First due time fires; its job stays queued (no worker), so the run is still going.
        assert_eq!(remora_api::schedules::tick(&inst, due).await, 1);
        assert_eq!(remora_api::schedules::tick(&inst, due + 60_000).await, 1);
        let want: Vec<(&str, usize)> = match policy {
            "skip" => vec![("started", 1), ("skipped", 0)],
            "queue" => vec![("started", 1), ("pending", 0)],
            _ => vec![("started", 1), ("started", 1)],
        };
        let got = runs(&stack, &id).await;
        assert_eq!(
            got.iter()
                .map(|(s, n)| (s.as_str(), *n))
                .collect::<Vec<_>>(),
            want,
            "{policy}"
        );
        if policy == "skip" {
            // The skipped due time is notified, signed, once.
            let hit = rx
                .wait_for("schedule.skipped", Duration::from_secs(30), |b| {
                    b["schedule"]["id"] == id.as_str()
                })
                .await;
            assert!(hit.verified);
            let sc = &hit.body["schedule"];
            assert_eq!(
                (
                    &hit.body["event"],
                    &sc["name"],
                    &sc["template"],
                    &sc["reason"]
                ),
                (
                    &json!("schedule.skipped"),
                    &json!("s-skip"),
                    &json!("t"),
                    &json!("the previous run is still going")
                ),
                "{}",
                hit.body
            );
            assert_eq!(
                sc["due_at"],
                remora_domain::time::ms_to_rfc3339(due + 60_000),
                "{}",
                hit.body
            );
        }
        // The previous run ends: a queued due time starts now.
        let first = stack.get(&format!("/api/v1/schedules/{id}/runs")).await;
        let fired = first
            .as_array()
            .unwrap()
            .iter()
            .find_map(|r| r["job_ids"][0].as_str())
            .unwrap();
        let fired = stack.get(&format!("/api/v1/jobs/{fired}")).await;
        assert_eq!(
            (&fired["schedule_id"], &fired["template_version"]),
            (&json!(id), &json!(1)),
            "a fired job records its schedule: {fired}"
        );
        for r in first.as_array().unwrap() {
            for j in r["job_ids"].as_array().unwrap() {
                stack
                    .post(
                        &format!("/api/v1/jobs/{}/cancel", j.as_str().unwrap()),
                        json!(null),
                    )
                    .await;
            }
        }
        remora_api::schedules::tick(&inst, due + 61_000).await;
        if policy == "queue" {
            let got = runs(&stack, &id).await;
            assert_eq!(
                got[1],
                ("started".to_string(), 1),
                "the queued run started: {got:?}"
            );
        }
        // Cancel everything of this schedule before the next policy.
        for r in stack
            .get(&format!("/api/v1/schedules/{id}/runs"))
            .await
            .as_array()
            .unwrap()
        {
            for j in r["job_ids"].as_array().unwrap() {
                stack
                    .post(
                        &format!("/api/v1/jobs/{}/cancel", j.as_str().unwrap()),
                        json!(null),
                    )
                    .await;
            }
        }
        let (st, _) = call(
            &stack,
            reqwest::Method::POST,
            &format!("/api/v1/schedules/{id}/pause"),
            None,
        )
        .await;
        assert_eq!(st, 200);
    }
    // Only `skip` skips: one notification in all.
    assert_eq!(rx.hits().len(), 1, "{:?}", rx.hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catch_up_after_downtime_fires_once_or_not_at_all() {
    let stack = quiet_stack(Db::Sqlite).await;
    let inst = instance(&stack).await;
    let sid = stack.add_server_raw("h").await;
    stack
        .post(
            "/api/v1/templates",
            json!({"name": "t", "command": "true", "targets": {"servers": [sid]}}),
        )
        .await;
    for catch_up in [true, false] {
        let (st, s) = stack
            .post("/api/v1/schedules", json!({"name": format!("c-{catch_up}"), "template": "t", "cron": "*/5 * * * *", "overlap": "allow", "catch_up": catch_up}))
            .await;
        assert_eq!(st, 201, "{s}");
        let id = s["id"].as_str().unwrap();
        let due = remora_domain::time::rfc3339_to_ms(s["next_due_at"].as_str().unwrap()).unwrap();
        // Down for 3 hours (36 due times): one run or none, and the schedule moves past now.
        let now = due + 3 * 3_600_000 + 1000;
        assert_eq!(remora_api::schedules::tick(&inst, now).await, 1);
        assert_eq!(
            remora_api::schedules::tick(&inst, now).await,
            0,
            "nothing more at the same time"
        );
        let got = runs(&stack, id).await;
        let want = if catch_up {
            ("started".to_string(), 1)
        } else {
            ("missed".to_string(), 0)
        };
        assert_eq!(got, vec![want]);
        let after = stack.get(&format!("/api/v1/schedules/{id}")).await;
        let next =
            remora_domain::time::rfc3339_to_ms(after["next_due_at"].as_str().unwrap()).unwrap();
        assert!(next > now && next - now <= 300_000, "next due after now");
    }
}

/// Two API instances tick concurrently with the same (fast) clock over 50 due times: each due
/// time fires exactly once (`REMORA_TEST_DB=postgres` for PostgreSQL; SQLite otherwise).
async fn exactly_once(db: Db) {
    let stack = quiet_stack(db).await;
    let a = instance(&stack).await;
    let b = instance(&stack).await;
    let sid = stack.add_server_raw("h").await;
    stack
        .post(
            "/api/v1/templates",
            json!({"name": "t", "command": "true", "targets": {"servers": [sid]}}),
        )
        .await;
    let (st, s) = stack
        .post(
            "/api/v1/schedules",
            json!({"name": "race", "template": "t", "cron": "* * * * *", "overlap": "allow"}),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    let due = remora_domain::time::rfc3339_to_ms(s["next_due_at"].as_str().unwrap()).unwrap();
    let mut claimed = [0usize; 2];
    for k in 0..50i64 {
        let now = due + k * 60_000 + 10;
        let (x, y) = tokio::join!(
            remora_api::schedules::tick(&a, now),
            remora_api::schedules::tick(&b, now)
        );
        assert_eq!(x + y, 1, "due {k}: claimed once (a {x}, b {y})");
        claimed[0] += x;
        claimed[1] += y;
    }
    let runs = stack.store.list_schedule_runs(&id, 100).await.unwrap();
    assert_eq!(runs.len(), 50);
    assert!(
        runs.iter()
            .all(|r| r.status == "started" && r.job_ids.len() == 1),
        "{runs:?}"
    );
    let jobs = stack.get("/api/v1/jobs?limit=100").await;
    assert_eq!(jobs["pagination"]["total"], 50, "50 jobs, one per due time");
    eprintln!("claims by instance: {claimed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_once_with_two_api_instances_on_postgres() {
    let Some(pg) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set");
        return;
    };
    exactly_once(Db::Postgres(pg)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_once_with_two_api_instances_on_sqlite() {
    exactly_once(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schedule_validation_and_next_runs() {
    let stack = quiet_stack(Db::Sqlite).await;
    let sid = stack.add_server_raw("h").await;
    stack.post("/api/v1/templates", json!({"name": "t", "command": "true", "params": [{"name": "n", "type": "integer", "required": true}], "targets": {"servers": [sid]}})).await;
    for (body, field) in [
        (
            json!({"name": "x", "template": "t", "cron": "61 * * * *", "params": {"n": 1}}),
            "cron",
        ),
        (
            json!({"name": "x", "template": "t", "cron": "* * * *", "params": {"n": 1}}),
            "cron",
        ),
        (
            json!({"name": "x", "template": "t", "cron": "@daily", "timezone": "Mars/Base", "params": {"n": 1}}),
            "timezone",
        ),
        (
            json!({"name": "x", "template": "t", "cron": "@daily"}),
            "params",
        ),
        (
            json!({"name": "x", "template": "t", "cron": "@daily", "params": {"n": 1}, "jitter": 7200}),
            "jitter",
        ),
    ] {
        let (st, e) = stack.post("/api/v1/schedules", body.clone()).await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {e}"
        );
    }
    let (st, s) = stack
        .post("/api/v1/schedules", json!({"name": "nightly", "template": "t", "cron": "30 2 * * *", "timezone": "Europe/Berlin", "params": {"n": 3}}))
        .await;
    assert_eq!(st, 201, "{s}");
    assert!(
        s["description"].as_str().unwrap().contains("Europe/Berlin"),
        "{s}"
    );
    let next = stack.get("/api/v1/schedules/nightly/next?count=10").await;
    assert_eq!(next.as_array().unwrap().len(), 10);
    let (st, p) = call(
        &stack,
        reqwest::Method::POST,
        "/api/v1/schedules/nightly/pause",
        None,
    )
    .await;
    assert_eq!((st, p["enabled"].as_bool()), (200, Some(false)));
    let (st, p) = call(
        &stack,
        reqwest::Method::POST,
        "/api/v1/schedules/nightly/resume",
        None,
    )
    .await;
    assert_eq!((st, p["enabled"].as_bool()), (200, Some(true)));
    let (st, e) = call(&stack, reqwest::Method::DELETE, "/api/v1/templates/t", None).await;
    assert_eq!(st, 409, "a used template is not deleted: {e}");
    let (st, _) = call(
        &stack,
        reqwest::Method::DELETE,
        "/api/v1/schedules/nightly",
        None,
    )
    .await;
    assert_eq!(st, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_templates_and_schedules() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    stack.add_server("h", &host).await;
    let (st, _) = stack
        .post("/api/v1/templates", json!({"name": "greet", "command": "echo \"hello $REMORA_PARAM_WHO\"", "params": [{"name": "who", "type": "string", "default": "world"}], "targets": {"servers": ["h"]}}))
        .await;
    assert_eq!(st, 201);
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let o = crate::cli::remora(&stack, &["templates", "list"], None).await;
    assert!(
        o.status.success() && text(&o).contains("greet") && text(&o).contains("who:string"),
        "{}",
        text(&o)
    );
    let o = crate::cli::remora(
        &stack,
        &["-o", "json", "templates", "run", "greet", "-p", "who=$(id)"],
        None,
    )
    .await;
    assert!(o.status.success(), "{o:?}");
    let job: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = job["id"].as_str().unwrap();
    stack.wait_final(id, Duration::from_secs(30)).await;
    assert_eq!(
        stack.get(&format!("/api/v1/jobs/{id}/logs")).await["stdout"],
        "hello $(id)\n"
    );
    let o = crate::cli::remora(&stack, &["templates", "run", "greet", "-p", "nope=1"], None).await;
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unknown parameter `nope`"),
        "{o:?}"
    );
    let o = crate::cli::remora(
        &stack,
        &[
            "schedules",
            "create",
            "nightly",
            "--template",
            "greet",
            "--cron",
            "30 2 * * *",
            "--tz",
            "Europe/Berlin",
            "-p",
            "who=cron",
        ],
        None,
    )
    .await;
    assert!(o.status.success(), "{o:?}");
    assert!(text(&o).contains("Europe/Berlin"), "{}", text(&o));
    let o = crate::cli::remora(&stack, &["schedules", "next", "nightly", "-n", "3"], None).await;
    assert_eq!(text(&o).lines().count(), 3, "{}", text(&o));
    let o = crate::cli::remora(&stack, &["schedules", "pause", "nightly"], None).await;
    assert!(o.status.success());
    assert_eq!(
        stack.get("/api/v1/schedules/nightly").await["enabled"],
        false
    );
    let o = crate::cli::remora(&stack, &["schedules", "resume", "nightly"], None).await;
    assert!(o.status.success());
    let o = crate::cli::remora(&stack, &["schedules", "list"], None).await;
    assert!(text(&o).contains("nightly"), "{}", text(&o));
    let o = crate::cli::remora(&stack, &["schedules", "rm", "nightly"], None).await;
    assert!(o.status.success());
    assert!(stack
        .get("/api/v1/schedules")
        .await
        .as_array()
        .unwrap()
        .is_empty());
}
