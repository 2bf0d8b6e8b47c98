//! The MQTT peer works: a real mosquitto with its four listeners, and the `mosquitto_sub` /
//! `mosquitto_pub` clients the Petra tests check with.

use petra_test_support::mqtt::{self, Broker, CLIENT_CN, Msg, PASSWORD, Sub, USER};
use petra_test_support::port_open;

fn msg(topic: &str, payload: &[u8], retained: bool, qos: u8) -> Msg {
    Msg {
        topic: topic.to_string(),
        payload: payload.to_vec(),
        retained,
        qos,
    }
}

#[test]
fn plain_round_trip_with_binary_and_empty_payloads() {
    let broker = Broker::start();
    assert_eq!(
        broker.url_plain(),
        format!("mqtt://127.0.0.1:{}", broker.plain_port())
    );
    let mut sub = Sub::start(broker.plain_port(), "plant/#");
    let binary = [0u8, 1, 2, 0xff, b'\n', b' ', 0x80];
    mqtt::publish(broker.plain_port(), "plant/a", b"21.5", 1, false);
    mqtt::publish(broker.plain_port(), "plant/b c", &binary, 0, false);
    mqtt::publish(broker.plain_port(), "plant/empty", b"", 1, false);
    mqtt::publish(broker.plain_port(), "other/x", b"not subscribed", 1, false);
    mqtt::publish(broker.plain_port(), "plant/last", b"end", 1, false);
    let msgs = sub.wait_for("plant/last", |m| m.iter().any(|m| m.topic == "plant/last"));
    assert_eq!(
        msgs,
        [
            msg("plant/a", b"21.5", false, 1),
            msg("plant/b c", &binary, false, 0),
            msg("plant/empty", b"", false, 1),
            msg("plant/last", b"end", false, 1),
        ]
    );
    assert_eq!(sub.wait_for_topic("plant/a").text(), "21.5");
}

#[test]
fn a_retained_message_is_delivered_to_a_later_subscriber_as_retained() {
    let broker = Broker::start();
    mqtt::publish(broker.plain(), "state/x", b"on", 1, true);
    let mut sub = Sub::builder(broker.plain_port(), "state/#").qos(0).start();
    assert_eq!(
        sub.wait_for_topic("state/x"),
        msg("state/x", b"on", true, 0)
    );
    mqtt::publish(broker.plain(), "state/x", b"off", 1, true);
    let msgs = sub.wait_for("the live update", |m| m.len() == 2);
    assert_eq!(msgs[1], msg("state/x", b"off", false, 0));
}

#[test]
fn the_password_listener_refuses_wrong_credentials_and_accepts_the_right_ones() {
    let broker = Broker::start();
    assert_eq!(
        broker.url_auth(),
        format!("mqtt://127.0.0.1:{}", broker.auth_port())
    );
    let mut sub = Sub::start(broker.plain_port(), "secure/#");

    let wrong = mqtt::try_publish(
        broker.auth().credentials(USER, "wrong"),
        "secure/a",
        b"x",
        1,
        false,
    )
    .expect_err("a wrong password must be refused");
    assert_eq!(wrong.status.code(), Some(5), "{wrong}");
    assert!(
        wrong.output.contains("Connection Refused: not authorised"),
        "{wrong}"
    );
    let anonymous = mqtt::try_publish(broker.auth().anonymous(), "secure/a", b"x", 1, false)
        .expect_err("anonymous must be refused");
    assert!(anonymous.output.contains("not authorised"), "{anonymous}");

    // A subscriber with the wrong password fails loudly (its output says why).
    let refused = std::panic::catch_unwind(|| {
        Sub::start(broker.auth().credentials("nobody", PASSWORD), "#");
    });
    let why = *refused
        .expect_err("a refused subscriber panics")
        .downcast::<String>()
        .unwrap();
    assert!(why.contains("not authorised"), "{why}");

    mqtt::publish(broker.auth(), "secure/a", b"ok", 1, false);
    let mut auth_sub = Sub::start(broker.auth(), "secure/#");
    mqtt::publish(broker.auth(), "secure/b", b"ok too", 1, false);
    assert_eq!(auth_sub.wait_for_topic("secure/b").text(), "ok too");
    let msgs = sub.wait_for("both accepted publishes", |m| m.len() == 2);
    assert_eq!(msgs[0], msg("secure/a", b"ok", false, 1));
    assert!(
        broker.output().iter().any(|l| l.contains("not authorised")),
        "the broker logs the refusals"
    );
}

#[test]
fn the_tls_listener_takes_the_test_ca_and_a_password() {
    let broker = Broker::start();
    assert_eq!(
        broker.url_tls(),
        format!("mqtts://localhost:{}", broker.tls_port())
    );
    let mut sub = Sub::start(broker.tls(), "tls/#");
    mqtt::publish(broker.tls(), "tls/a", b"secret", 1, false);
    // The certificate is also for 127.0.0.1.
    mqtt::publish(broker.tls().host("127.0.0.1"), "tls/b", b"by ip", 1, false);
    let msgs = sub.wait_for("two messages", |m| m.len() == 2);
    assert_eq!(
        msgs,
        [
            msg("tls/a", b"secret", false, 1),
            msg("tls/b", b"by ip", false, 1)
        ]
    );

    // Wrong password over TLS, plain MQTT to the TLS port, and a CA that did not sign it.
    let wrong = mqtt::try_publish(
        broker.tls().credentials(USER, "wrong"),
        "tls/c",
        b"x",
        1,
        false,
    )
    .expect_err("wrong password");
    assert_eq!(wrong.status.code(), Some(5), "{wrong}");
    let plain = mqtt::try_publish(
        mqtt::Endpoint::plain(broker.tls_port()).credentials(USER, PASSWORD),
        "tls/c",
        b"x",
        0,
        false,
    );
    assert!(plain.is_err(), "plain MQTT to the TLS listener must fail");
    let other = Broker::start();
    let untrusted = mqtt::try_publish(broker.tls().tls(&other.ca_file()), "tls/c", b"x", 0, false)
        .expect_err("a server certificate from another CA must not verify");
    assert!(untrusted.output.contains("TLS error"), "{untrusted}");
    assert_eq!(sub.messages().len(), 2, "{:?}", sub.messages());
}

#[test]
fn the_mutual_tls_listener_takes_the_client_certificate_as_the_username() {
    let broker = Broker::start();
    assert_eq!(
        broker.url_mtls(),
        format!("mqtts://localhost:{}", broker.mtls_port())
    );
    assert!(broker.client_cert().is_file() && broker.client_key().is_file());
    let mut sub = Sub::start(broker.mtls(), "m/#");
    mqtt::publish(broker.mtls(), "m/a", b"cert", 1, false);
    assert_eq!(sub.wait_for_topic("m/a"), msg("m/a", b"cert", false, 1));
    assert!(
        broker
            .output()
            .iter()
            .any(|l| l.contains(&format!("u'{CLIENT_CN}'"))),
        "the certificate's CN is the username:\n{}",
        broker.output().join("\n")
    );
    // Without a certificate the handshake fails, even with the password.
    let no_cert = mqtt::try_publish(
        broker.mtls().no_client_cert().credentials(USER, PASSWORD),
        "m/b",
        b"x",
        0,
        false,
    );
    assert!(no_cert.is_err(), "a client without a certificate must fail");
}

#[test]
fn retained_messages_and_persistent_sessions_survive_stop_and_restart() {
    let mut broker = Broker::start();
    let ports = (
        broker.plain_port(),
        broker.auth_port(),
        broker.tls_port(),
        broker.mtls_port(),
    );
    mqtt::publish(broker.plain(), "keep/retained", b"r1", 1, true);

    // A persistent session, away while a QoS 1 message is queued for it.
    let mut away = Sub::builder(broker.plain_port(), "queue/#")
        .persistent("petra-test-away")
        .start();
    away.kill();
    mqtt::publish(broker.plain(), "queue/a", b"queued", 1, false);

    // A live subscriber sees the broker go away and subscribes again by itself.
    let mut live = Sub::start(broker.plain_port(), "keep/#");
    live.wait_for_topic("keep/retained");

    broker.stop();
    assert!(!broker.is_running());
    assert!(!port_open(ports.0));
    broker.restart();
    assert!(broker.is_running());
    assert_eq!(
        ports,
        (
            broker.plain_port(),
            broker.auth_port(),
            broker.tls_port(),
            broker.mtls_port()
        )
    );
    assert!(
        broker
            .output()
            .iter()
            .any(|l| l.contains("=== mosquitto run 2 ===")),
        "output keeps both runs"
    );

    let mut later = Sub::start(broker.plain_port(), "keep/#");
    assert_eq!(
        later.wait_for_topic("keep/retained"),
        msg("keep/retained", b"r1", true, 1)
    );
    let mut back = Sub::builder(broker.plain_port(), "queue/#")
        .persistent("petra-test-away")
        .start();
    assert_eq!(
        back.wait_for_topic("queue/a"),
        msg("queue/a", b"queued", false, 1)
    );
    live.wait_subscribed(2);
    // Every listener is back, with its files.
    mqtt::publish(broker.auth(), "keep/auth", b"a", 1, false);
    mqtt::publish(broker.tls(), "keep/tls", b"t", 1, false);
    mqtt::publish(broker.mtls(), "keep/mtls", b"m", 1, false);
    later.wait_for("all three listeners", |m| m.len() == 4);
}

#[test]
fn kill_and_restart_on_the_same_ports_keeps_what_was_saved() {
    let mut broker = Broker::start();
    let plain = broker.plain_port();
    let saves = broker.saves();
    mqtt::publish(broker.plain(), "k/retained", b"saved", 1, true);
    broker.wait_saved(saves);

    broker.kill();
    assert!(!broker.is_running());
    let down = mqtt::try_publish(plain, "k/x", b"x", 0, false).expect_err("nobody listens");
    assert!(down.output.contains("refused"), "{down}");
    // Stop after a kill does nothing; restart starts it again.
    broker.stop();
    broker.restart();
    assert_eq!(broker.plain_port(), plain);
    let mut sub = Sub::start(plain, "k/#");
    assert_eq!(
        sub.wait_for_topic("k/retained"),
        msg("k/retained", b"saved", true, 1)
    );

    // The subscriber connects again by itself after a kill and a restart.
    broker.kill();
    broker.restart();
    sub.wait_subscribed(2);
    mqtt::publish(broker.plain(), "k/after", b"up", 1, false);
    sub.wait_for_topic("k/after");

    // restart() of a running broker stops it cleanly first.
    broker.restart();
    let mut fresh = Sub::start(plain, "k/#");
    mqtt::publish(broker.plain(), "k/again", b"up", 1, false);
    fresh.wait_for_topic("k/again");
}
