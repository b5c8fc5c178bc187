//! Sorting `lapin` errors into what a caller can do about them.

use lapin::ErrorKind;
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};

use crate::BrokerError;

/// Maps a `lapin` error during `context` (an AMQP method, e.g. `basic.publish`) to a
/// [`BrokerError`]: connection trouble is `Disconnected` (reconnecting helps), a refusal the
/// broker would repeat (missing permission, conflicting queue arguments) is `Fatal`.
pub(crate) fn broker_error(context: &str, error: lapin::Error) -> BrokerError {
    let kind = match error.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::NOROUTE | AMQPSoftError::NOCONSUMERS) => {
                BrokerError::not_confirmed
            }
            // Another connection holds the exclusive queue; it may let go.
            AMQPErrorKind::Soft(AMQPSoftError::RESOURCELOCKED) => BrokerError::disconnected,
            AMQPErrorKind::Soft(_) => BrokerError::fatal,
            AMQPErrorKind::Hard(
                AMQPHardError::CONNECTIONFORCED
                | AMQPHardError::RESOURCEERROR
                | AMQPHardError::INTERNALERROR,
            ) => BrokerError::disconnected,
            // Unknown vhost, refused access, or a protocol violation: the same again fails again.
            AMQPErrorKind::Hard(_) => BrokerError::fatal,
        },
        ErrorKind::IOError(_)
        | ErrorKind::InvalidChannel(_)
        | ErrorKind::InvalidChannelState(..)
        | ErrorKind::InvalidConnectionState(_)
        | ErrorKind::MissingHeartbeatError
        | ErrorKind::ChannelsLimitReached => BrokerError::disconnected,
        _ => BrokerError::fatal,
    };
    kind(context).caused_by(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::protocol::AMQPError;

    fn protocol(kind: AMQPErrorKind) -> lapin::Error {
        ErrorKind::ProtocolError(AMQPError::new(kind, "text".into())).into()
    }

    #[test]
    fn connection_trouble_is_worth_a_retry() {
        let io = lapin::Error::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(matches!(
            broker_error("basic.publish", io),
            BrokerError::Disconnected { context, source: Some(_) } if context == "basic.publish"
        ));
        let forced = protocol(AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED));
        assert!(matches!(
            broker_error("x", forced),
            BrokerError::Disconnected { .. }
        ));
    }

    #[test]
    fn refusals_the_broker_would_repeat_are_fatal() {
        for kind in [
            AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED),
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED),
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED),
        ] {
            assert!(matches!(
                broker_error("x", protocol(kind)),
                BrokerError::Fatal { .. }
            ));
        }
    }

    #[test]
    fn an_unroutable_message_is_not_confirmed() {
        let no_route = protocol(AMQPErrorKind::Soft(AMQPSoftError::NOROUTE));
        assert!(matches!(
            broker_error("x", no_route),
            BrokerError::NotConfirmed { .. }
        ));
    }
}
