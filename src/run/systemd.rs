//! systemd's service notifications (`Type=notify`): `READY=1` once the sources and clients run,
//! `STOPPING=1` when a stop begins, `RELOADING=1` when a reload does, and `WATCHDOG=1` from the run loop every half `WatchdogSec`,
//! so that a hung process (its runtime no longer turning) is restarted by systemd. Outside systemd
//! (`NOTIFY_SOCKET` unset) each call does nothing.

use sd_notify::NotifyState;
use std::time::Duration;

fn send(state: NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(&[state]) {
        tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}

pub fn ready() {
    send(NotifyState::Ready);
}

pub fn stopping() {
    send(NotifyState::Stopping);
}

/// A reload begins; `READY=1` follows once the new config runs. systemd 253 and newer want the
/// time with it (`MONOTONIC_USEC`).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => {
            if let Err(e) = sd_notify::notify(&[NotifyState::Reloading, now]) {
                tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
            }
        }
        Err(_) => send(NotifyState::Reloading),
    }
}

/// How often to ping the watchdog: half its timeout, or never when systemd set none.
pub fn watchdog_every() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|timeout| timeout / 2)
}

pub fn watchdog() {
    send(NotifyState::Watchdog);
}
