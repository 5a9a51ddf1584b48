//! The scenarios, each measured on its own: its figures, then Guichet's memory and
//! open files before and after it, and their peaks during it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::Options;
use crate::bed::{self, Bed, PASSWORD};
use crate::flows::{self, Step, application, browser};
use crate::run::{Outcome, Tally, address, run, run_until};

/// A flow's outcome: `ok` when it went through, else the step that stopped it.
fn done<T>(step: Step<T>, ok: u16) -> Outcome {
    step.map_or_else(|outcome| outcome, |_| Outcome::Status(ok))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Runs `scenario`, sampling Guichet's open files meanwhile; prints its figures.
async fn measured<Fut>(bed: &Bed, title: &str, scenario: Fut)
where
    Fut: Future<Output = (Tally, Vec<String>)>,
{
    println!("\n== {title}");
    let before = bed::usage(bed.pid);
    bed::reset_peak(bed.pid);
    let sampling = Arc::new(AtomicBool::new(true));
    let peak_fds = Arc::new(AtomicUsize::new(before.fds));
    let sampler = tokio::spawn(sample_fds(bed.pid, sampling.clone(), peak_fds.clone()));
    let (mut tally, notes) = scenario.await;
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let after = bed::usage(bed.pid);
    println!("   {}", tally.line());
    for note in notes {
        println!("   {note}");
    }
    println!(
        "   guichet: RSS {:.1} -> {:.1} MiB (peak {:.1}), open files {} -> {} (peak {})",
        mib(before.rss_kib),
        mib(after.rss_kib),
        mib(after.peak_kib),
        before.fds,
        after.fds,
        peak_fds.load(Ordering::Relaxed),
    );
}

async fn sample_fds(pid: u32, sampling: Arc<AtomicBool>, peak: Arc<AtomicUsize>) {
    while sampling.load(Ordering::Relaxed) {
        peak.fetch_max(bed::fd_count(pid), Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn all(bed: &Arc<Bed>, options: &Options) {
    oidc(bed, options).await;
    if options.wants("reset") {
        reset(bed, options).await;
    }
    if options.wants("activation") {
        activation(bed, options).await;
    }
    if options.wants("hall") {
        lecture_hall(bed).await;
    }
    if options.wants("unknown") {
        unknown(bed, 140, 4, 14, 17).await;
    }
    if options.wants("unknown-500") {
        unknown(bed, 500, 500, 50, 18).await;
    }
    if options.wants("spray") {
        spray(bed).await;
    }
    if options.wants("slow") {
        slow(bed, options).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = bed::usage(bed.pid);
    println!(
        "\nguichet idle 5 s after the last scenario: RSS {:.1} MiB, open files {}",
        mib(idle.rss_kib),
        idle.fds
    );
}

/// The OIDC scenarios; the signed-in browsers and tokens they reuse are made first.
async fn oidc(bed: &Arc<Bed>, options: &Options) {
    let (c, n) = (options.concurrency, options.count);
    let spread = options.spread;
    if options.wants("login") {
        let title = format!(
            "complete OIDC login (authorize, login form + CSRF, code, token): concurrency {c}, {spread} addresses"
        );
        let b = bed.clone();
        let op = move |i: usize| {
            let b = b.clone();
            async move {
                let browser = browser(address(10, i % spread));
                let login = format!("bench{}", 1 + i % 200);
                let code =
                    flows::login_for_code(&b, &browser, &login, "openid profile email").await;
                let app = application(address(10, i % spread));
                match code {
                    Ok(code) => done(flows::redeem(&b, &app, &code).await, 200),
                    Err(outcome) => outcome,
                }
            }
        };
        measured(bed, &title, async { (run(n, c, op).await, vec![]) }).await;
    }
    let wanted = ["sso", "refresh", "userinfo"];
    if !wanted.iter().any(|s| options.wants(s)) {
        return;
    }
    let students = signed_in_browsers(bed, spread.min(200)).await;
    if options.wants("sso") {
        sso(bed, &students, c, n * 10, spread).await;
    }
    if options.wants("refresh") {
        refresh(bed, &students, c, n * 4).await;
    }
    if options.wants("userinfo") {
        userinfo(bed, &students, c, n * 10).await;
    }
}

/// `count` browsers, each on its own address, signed in as its own student.
async fn signed_in_browsers(bed: &Bed, count: usize) -> Arc<Vec<reqwest::Client>> {
    let mut browsers = Vec::with_capacity(count);
    for k in 0..count {
        let student = browser(address(11, k));
        let outcome =
            flows::sign_in_outcome(bed, &student, &format!("bench{}", k + 1), PASSWORD).await;
        assert!(
            matches!(outcome, Outcome::Status(303)),
            "set-up sign-in: {outcome:?}"
        );
        browsers.push(student);
    }
    Arc::new(browsers)
}

async fn sso(
    bed: &Arc<Bed>,
    students: &Arc<Vec<reqwest::Client>>,
    c: usize,
    n: usize,
    spread: usize,
) {
    let title = format!(
        "SSO hop (authorize with a live session -> code): concurrency {c}, {} students on their own addresses",
        students.len().min(spread)
    );
    let (b, s) = (bed.clone(), students.clone());
    let op = move |i: usize| {
        let (b, s) = (b.clone(), s.clone());
        async move { done(flows::silent_code(&b, &s[i % s.len()], "openid").await, 302) }
    };
    measured(bed, &title, async { (run(n, c, op).await, vec![]) }).await;
}

/// One code redeemed per student: the token response.
async fn first_tokens(
    bed: &Bed,
    students: &[reqwest::Client],
    scope: &str,
) -> Vec<serde_json::Value> {
    let mut answers = Vec::new();
    for (k, student) in students.iter().enumerate() {
        let code = flows::silent_code(bed, student, scope)
            .await
            .expect("set-up code");
        let app = application(address(12, k));
        answers.push(
            flows::redeem(bed, &app, &code)
                .await
                .expect("set-up tokens"),
        );
    }
    answers
}

async fn refresh(bed: &Arc<Bed>, students: &Arc<Vec<reqwest::Client>>, c: usize, n: usize) {
    let answers = first_tokens(bed, students, "openid offline_access").await;
    // A refresh token is rotated at each use: each slot holds its newest one.
    let slots: Arc<Vec<tokio::sync::Mutex<String>>> = Arc::new(
        answers
            .iter()
            .map(|a| {
                tokio::sync::Mutex::new(flows::string(a, "refresh_token").expect("refresh token"))
            })
            .collect(),
    );
    let title = format!(
        "refresh-token grant (rotation): concurrency {c}, {} token chains",
        slots.len()
    );
    let b = bed.clone();
    let op = move |i: usize| {
        let (b, slots) = (b.clone(), slots.clone());
        async move {
            let slot = i % slots.len();
            let mut token = slots[slot].lock().await;
            match flows::refresh(&b, &application(address(12, slot)), &token).await {
                Ok(next) => {
                    *token = next;
                    Outcome::Status(200)
                }
                Err(outcome) => outcome,
            }
        }
    };
    measured(bed, &title, async { (run(n, c, op).await, vec![]) }).await;
}

async fn userinfo(bed: &Arc<Bed>, students: &Arc<Vec<reqwest::Client>>, c: usize, n: usize) {
    let answers = first_tokens(bed, students, "openid profile email").await;
    let access: Arc<Vec<String>> = Arc::new(
        answers
            .iter()
            .map(|a| flows::string(a, "access_token").expect("access token"))
            .collect(),
    );
    let title = format!(
        "UserInfo (bearer token, directory read): concurrency {c}, {} tokens",
        access.len()
    );
    let b = bed.clone();
    let op = move |i: usize| {
        let (b, access) = (b.clone(), access.clone());
        async move {
            let k = i % access.len();
            flows::userinfo(&b, &application(address(13, k)), &access[k]).await
        }
    };
    measured(bed, &title, async { (run(n, c, op).await, vec![]) }).await;
}

async fn reset(bed: &Arc<Bed>, options: &Options) {
    let (c, n, spread) = (options.concurrency, options.flows.min(400), options.spread);
    let title = format!(
        "password reset end to end (form, mail read from the dev mail folder, link, new password): concurrency {c}, {spread} addresses"
    );
    let b = bed.clone();
    let op = move |i: usize| {
        let b = b.clone();
        async move {
            let browser = browser(address(14, i % spread));
            done(
                flows::reset(&b, &browser, &format!("reset{}", i + 1)).await,
                200,
            )
        }
    };
    let note =
        "latency includes the outbox writing the mail (mail.poll_interval, default 2 s)".to_owned();
    measured(bed, &title, async { (run(n, c, op).await, vec![note]) }).await;
}

async fn activation(bed: &Arc<Bed>, options: &Options) {
    let (c, n, spread) = (options.concurrency, options.flows.min(400), options.spread);
    let title = format!(
        "activation end to end (Paris Cité: e-mail + terms, mail, link, password): concurrency {c}, {spread} addresses"
    );
    let b = bed.clone();
    let op = move |i: usize| {
        let b = b.clone();
        async move {
            let browser = browser(address(15, i % spread));
            done(
                flows::activate(&b, &browser, &format!("act{}", i + 1)).await,
                200,
            )
        }
    };
    let note = "latency includes the outbox writing the mail".to_owned();
    measured(bed, &title, async { (run(n, c, op).await, vec![note]) }).await;
}

/// 60 students behind one address, right passwords, all at once; then 5 more.
async fn lecture_hall(bed: &Arc<Bed>) {
    let hall = address(16, 0);
    let b = bed.clone();
    let op = move |i: usize| {
        let b = b.clone();
        async move {
            flows::sign_in_outcome(&b, &browser(hall), &format!("hall{}", i + 1), PASSWORD).await
        }
    };
    let scenario = async {
        let tally = run(60, 60, op).await;
        let mut later = 0;
        for k in 1..=5 {
            let outcome =
                flows::sign_in_outcome(bed, &browser(hall), &format!("bench{k}"), PASSWORD).await;
            later += usize::from(matches!(outcome, Outcome::Status(303)));
        }
        let note = format!(
            "signed in (303): {} of 60; 5 later sign-ins from the same address: {later} of 5 signed in",
            tally.ok3
        );
        (tally, vec![note])
    };
    measured(
        bed,
        &format!("lecture hall: 60 sign-ins at once from {hall}, right passwords"),
        scenario,
    )
    .await;
}

/// `total` sign-ins with unknown logins, `c` at a time, from `addresses` addresses.
async fn unknown(bed: &Arc<Bed>, total: usize, c: usize, addresses: usize, block: u8) {
    let per = total.div_ceil(addresses);
    let title = format!(
        "{total} sign-ins with unknown logins, {c} at a time, from {addresses} addresses ({per} each)"
    );
    let b = bed.clone();
    let op = move |i: usize| {
        let b = b.clone();
        async move {
            let browser = browser(address(block, i / per));
            flows::sign_in_outcome(
                &b,
                &browser,
                &format!("nobody{block}x{i}"),
                "Wrong-Passw0rd!",
            )
            .await
        }
    };
    let note =
        "a wrong login is answered 401 (the form again); 429 = rate limited, 503 = busy".to_owned();
    measured(bed, &title, async { (run(total, c, op).await, vec![note]) }).await;
}

/// 100 addresses × 6 logins with wrong passwords, while an untargeted student
/// signs in from her own address every 200 ms.
async fn spray(bed: &Arc<Bed>) {
    let b = bed.clone();
    let op = move |i: usize| {
        let b = b.clone();
        async move {
            let browser = browser(address(19, i / 6));
            let login = format!("spray{}", 1 + i % 6);
            flows::sign_in_outcome(&b, &browser, &login, &format!("Wrong-{i}-x9")).await
        }
    };
    let scenario = async {
        let stop = Arc::new(AtomicBool::new(false));
        let student = tokio::spawn(student_signs_in(bed.clone(), stop.clone()));
        let tally = run(600, 16, op).await;
        stop.store(true, Ordering::Relaxed);
        let mut her = student.await.expect("student");
        let targeted =
            flows::sign_in_outcome(bed, &browser(address(20, 9)), "spray1", PASSWORD).await;
        let notes = vec![
            format!(
                "untargeted student (cbernard, own address) meanwhile: {}",
                her.line()
            ),
            format!(
                "a targeted student (spray1) right after, from a new browser on her own address: {targeted:?}"
            ),
        ];
        (tally, notes)
    };
    measured(
        bed,
        "password spray: 100 addresses x 6 logins, wrong passwords, 16 at a time",
        scenario,
    )
    .await;
}

async fn student_signs_in(bed: Arc<Bed>, stop: Arc<AtomicBool>) -> Tally {
    let op = move |_| {
        let bed = bed.clone();
        async move { flows::sign_in_outcome(&bed, &browser(address(20, 0)), "cbernard", PASSWORD).await }
    };
    run_until(1, Duration::from_millis(200), stop, op).await
}

/// Slow clients from their own addresses while 4 students load the login page.
async fn slow(bed: &Arc<Bed>, options: &Options) {
    let (count, secs) = (options.slow, options.slow_secs);
    let server: std::net::SocketAddr = bed
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("server address");
    let title = format!(
        "{count} slow clients (half a request head, then a byte every 5 s) for {secs} s, meanwhile GET /login x4 workers (new connection each)"
    );
    let scenario = async {
        let stop_slow = Arc::new(AtomicBool::new(false));
        let slow = tokio::spawn(crate::slow::slow_clients(
            server,
            21,
            count,
            stop_slow.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let stop = Arc::new(AtomicBool::new(false));
        let normal = tokio::spawn(normal_requests(bed.clone(), stop.clone()));
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let tally = normal.await.expect("normal requests");
        stop_slow.store(true, Ordering::Relaxed);
        let report = slow.await.expect("slow clients");
        let closed = report.closed_after.len();
        let median = report
            .closed_after
            .get(closed / 2)
            .map_or(String::new(), |s| format!(" (median after {s:.1} s)"));
        let note = format!(
            "slow connections: {} opened, {} refused at connect, {closed} closed by the server{median}, {} still open at the end",
            report.opened,
            report.refused,
            report.opened - closed
        );
        (
            tally,
            vec!["(figures above: the normal requests)".to_owned(), note],
        )
    };
    measured(bed, &title, scenario).await;
}

async fn normal_requests(bed: Arc<Bed>, stop: Arc<AtomicBool>) -> Tally {
    let op = move |w: usize| {
        let bed = bed.clone();
        async move {
            let client = reqwest::Client::builder()
                .local_address(address(22, w))
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client");
            match client.get(format!("{}/login", bed.base)).send().await {
                Ok(response) => Outcome::of(&response),
                Err(_) => Outcome::Error,
            }
        }
    };
    run_until(4, Duration::from_millis(50), stop, op).await
}
