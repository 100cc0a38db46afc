//! Conformance of [`app::trust_store::TrustStore`]: keys found by the hash of their secret, revocation that
//! keeps its first time, the audit trail's filters and order, and hold ownership.

use std::sync::Arc;

use app::store::Store;
use app::trust_store::{AuditFilter, NewApiKey, NewAuditEntry, NewWebSession, Role};
use app::StoreError;
use chrono::{TimeZone, Utc};

fn key(name: &str, role: Role, channel: Option<&str>, hash: char) -> NewApiKey {
    NewApiKey {
        name: name.into(),
        role,
        channel: channel.map(str::to_string),
        secret_hash: std::iter::repeat_n(hash, 64).collect(),
        prefix: "sr_abcde".into(),
        created_by: "conformance".into(),
        expires_at: None,
    }
}

fn entry(key_id: Option<i64>, actor: &str, entity: &str, id: &str, at_s: i64) -> NewAuditEntry {
    NewAuditEntry {
        at: Utc.timestamp_opt(1_700_000_000 + at_s, 0).unwrap(),
        actor_key_id: key_id,
        actor_name: actor.into(),
        request_id: Some(format!("req-{at_s}")),
        entity: entity.into(),
        entity_id: Some(id.into()),
        action: format!("POST /v1/{entity}"),
        status: 201,
        summary: "created".into(),
    }
}

pub async fn trust_keys_audit_and_hold_channels(store: Arc<dyn Store>) {
    let now = Utc.timestamp_opt(1_700_000_000, 123_456_000).unwrap();
    assert_eq!(store.count_api_keys().await.unwrap(), 0);
    let admin = store.create_api_key(&key("root", Role::Admin, None, 'a'), now).await.unwrap();
    let shop = store.create_api_key(&key("shop", Role::Channel, Some("web"), 'b'), now).await.unwrap();
    assert_eq!((admin.role, admin.created_at, admin.revoked_at), (Role::Admin, now, None));
    assert_eq!(shop.channel.as_deref(), Some("web"));
    assert_eq!(store.count_api_keys().await.unwrap(), 2);
    let found = store.api_key_by_hash(&"b".repeat(64)).await.unwrap().unwrap();
    assert_eq!(found, shop);
    assert!(store.api_key_by_hash(&"c".repeat(64)).await.unwrap().is_none());

    // The database refuses what the app must never write.
    let dup = store.create_api_key(&key("again", Role::Staff, None, 'a'), now).await.unwrap_err();
    assert!(matches!(dup, StoreError::Conflict { .. }), "{dup:?}");
    for bad in
        [key("x", Role::Channel, None, 'd'), key("x", Role::Staff, Some("web"), 'e'), key("", Role::Staff, None, 'f')]
    {
        let e = store.create_api_key(&bad, now).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict { .. }), "{bad:?}: {e:?}");
    }

    let later = now + chrono::TimeDelta::seconds(60);
    let revoked = store.revoke_api_key(shop.id, later).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(later));
    let again = store.revoke_api_key(shop.id, later + chrono::TimeDelta::seconds(1)).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(later), "the first revocation stands");
    assert!(store.revoke_api_key(9_999, later).await.unwrap().is_none());
    let page = store.list_api_keys(None, 1).await.unwrap();
    assert_eq!(page.iter().map(|k| k.id).collect::<Vec<_>>(), vec![admin.id]);
    let rest = store.list_api_keys(Some(admin.id), 10).await.unwrap();
    assert_eq!(rest.iter().map(|k| k.id).collect::<Vec<_>>(), vec![shop.id]);

    store.append_audit(&[]).await.unwrap();
    let entries: Vec<NewAuditEntry> = (0..5)
        .map(|i| {
            let (k, who) = if i % 2 == 0 { (Some(admin.id), "root") } else { (None, "cli") };
            entry(k, who, if i < 3 { "products" } else { "orders" }, &i.to_string(), i)
        })
        .collect();
    store.append_audit(&entries).await.unwrap();
    let all = store.list_audit(&AuditFilter::default(), None, 100).await.unwrap();
    assert_eq!(all.iter().map(|r| r.entry.clone()).collect::<Vec<_>>(), entries);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let products = AuditFilter { entity: Some("products".into()), ..Default::default() };
    assert_eq!(store.list_audit(&products, None, 100).await.unwrap().len(), 3);
    let by_key = AuditFilter { actor: Some(admin.id.to_string()), ..Default::default() };
    assert_eq!(store.list_audit(&by_key, None, 100).await.unwrap().len(), 3);
    let by_name = AuditFilter { actor: Some("cli".into()), ..Default::default() };
    assert_eq!(store.list_audit(&by_name, None, 100).await.unwrap().len(), 2);
    let one = AuditFilter { entity: Some("orders".into()), entity_id: Some("4".into()), ..Default::default() };
    assert_eq!(store.list_audit(&one, None, 100).await.unwrap().len(), 1);
    let since = AuditFilter { since: Some(entries[3].at), ..Default::default() };
    assert_eq!(store.list_audit(&since, None, 100).await.unwrap().len(), 2);
    let after = store.list_audit(&AuditFilter::default(), Some(all[1].id), 2).await.unwrap();
    assert_eq!(after.iter().map(|r| r.id).collect::<Vec<_>>(), vec![all[2].id, all[3].id]);

    // A hold that does not exist cannot be owned.
    let e = store.set_hold_channel(9_999, "web").await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert_eq!(store.hold_channel(9_999).await.unwrap(), None);
    assert_eq!(store.webhook_backlog().await.unwrap(), 0);
}

pub async fn web_sessions_live_expire_and_end(store: Arc<dyn Store>) {
    let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let staff = store.create_api_key(&key("floor", Role::Staff, None, 'b'), t0).await.unwrap();
    let session = |hash: char, expires_s: i64| NewWebSession {
        token_hash: std::iter::repeat_n(hash, 64).collect(),
        key_id: staff.id,
        csrf: "csrf-token-of-twenty-chars-or-more".into(),
        created_at: t0,
        expires_at: t0 + chrono::Duration::seconds(expires_s),
    };
    let (a, b) = (session('1', 3600), session('2', 60));
    store.create_web_session(&a).await.unwrap();
    store.create_web_session(&b).await.unwrap();
    // The same token twice is refused by the database.
    assert!(store.create_web_session(&a).await.is_err());
    // A session of a key that does not exist cannot be stored.
    let orphan = NewWebSession { key_id: staff.id + 1000, ..session('3', 60) };
    assert_eq!(conflict_of(store.create_web_session(&orphan).await), "web_sessions.key_id");

    let found = store.web_session(&a.token_hash, t0).await.unwrap().expect("live session");
    assert_eq!(found.key.id, staff.id);
    assert_eq!(found.key.role, Role::Staff);
    assert_eq!(found.csrf, a.csrf);
    assert_eq!(found.expires_at, a.expires_at);
    // Past its expiry a session is not found, even before it is swept.
    let later = t0 + chrono::Duration::seconds(120);
    assert!(store.web_session(&b.token_hash, later).await.unwrap().is_none());
    assert!(store.web_session(&a.token_hash, later).await.unwrap().is_some());
    // The session carries the key's revocation, for the app to refuse.
    store.revoke_api_key(staff.id, later).await.unwrap();
    let revoked = store.web_session(&a.token_hash, later).await.unwrap().unwrap();
    assert!(revoked.key.revoked_at.is_some());

    assert_eq!(store.purge_web_sessions(later).await.unwrap(), 1);
    assert_eq!(store.purge_web_sessions(later).await.unwrap(), 0);
    store.delete_web_session(&a.token_hash).await.unwrap();
    assert!(store.web_session(&a.token_hash, t0).await.unwrap().is_none());
    // Ending an unknown session is not an error.
    store.delete_web_session(&a.token_hash).await.unwrap();
}

fn conflict_of(r: app::store::StoreResult<()>) -> String {
    match r {
        Err(StoreError::Conflict { constraint }) => constraint,
        other => panic!("expected a conflict, got {other:?}"),
    }
}
