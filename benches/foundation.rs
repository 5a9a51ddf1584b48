//! Figures for the foundation: argon2id cost, directory lookups and binds against a
//! private slapd built from `directory-schema/`. Run with `cargo bench --bench foundation`.
//! Prints one line per measure; compare runs on the same machine.

mod support;

use std::sync::Arc;
use std::time::Duration;

use guichet::config::{DirectorySettings, HashingSettings, PasswordWrite};
use guichet::dev::slapd::{self, PrivateSlapd};
use guichet::directory::Directory;
use guichet::domain::{Email, Password};
use guichet::hashing::Hasher;
use support::measure;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("guichet foundation bench, {cpus} CPUs");
    let hashing = HashingSettings::default();
    let hasher = Hasher::new(&hashing).expect("hasher");
    let h = hasher.clone();
    measure(
        "argon2id hash (19 MiB, t=2, p=1)",
        40,
        hashing.max_concurrent,
        move |_| {
            let h = h.clone();
            async move {
                h.hash(&Password::new("Jussieu-Amphi-25"))
                    .await
                    .expect("hash");
            }
        },
    )
    .await;

    let dir = tempfile::tempdir().expect("tempdir");
    let ldap = PrivateSlapd::create(dir.path(), &PrivateSlapd::schema_dir(), "bench-admin", None)
        .expect("slapd");
    let settings = DirectorySettings {
        url: ldap.ldapi_url().parse().expect("url"),
        starttls: false,
        ca_path: None,
        people_dn: slapd::PEOPLE_DN.to_owned(),
        bind_dn: slapd::SERVICE_DN.to_owned(),
        bind_password: slapd::SERVICE_PASSWORD.to_owned().into(),
        timeout: Duration::from_secs(5),
        pool_size: 8,
        password_write: PasswordWrite::Hash,
        import: None,
        decoy_dn: Some(slapd::DECOY_DN.to_owned()),
        bind_queue: 128,
        bind_wait: Duration::from_secs(3),
    };
    let directory = Arc::new(Directory::new(&settings, hasher).expect("directory"));
    directory.ping().await.expect("ping");

    let d = directory.clone();
    let email: Email = "lea.durand@example.org".parse().expect("email");
    measure("lookup by personal e-mail (ldapi)", 4000, 8, move |_| {
        let (d, email) = (d.clone(), email.clone());
        async move {
            assert_eq!(
                d.find_by_personal_email(&email)
                    .await
                    .expect("lookup")
                    .len(),
                1
            );
        }
    })
    .await;

    let d = directory.clone();
    let dn = format!("uid=cbernard,{}", slapd::PEOPLE_DN);
    measure("password check by bind (slapd argon2)", 200, 8, move |_| {
        let (d, dn) = (d.clone(), dn.clone());
        async move {
            d.verify_password(&dn, &Password::new("Demo-Passw0rd!"))
                .await
                .expect("bind");
        }
    })
    .await;

    let d = directory.clone();
    let dn = format!("uid=ldurand,{}", slapd::PEOPLE_DN);
    measure("password write (hash + modify)", 40, 2, move |_| {
        let (d, dn) = (d.clone(), dn.clone());
        async move {
            d.set_password(&dn, &Password::new("Jussieu-Amphi-25"), Default::default())
                .await
                .expect("write");
        }
    })
    .await;
}
