//! The vocabulary of events (built in `crate::events`, subscribed to by webhook endpoints).

/// The event types Pipes emits (contract §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// `pipes.connected_account.connected`
    ConnectedAccountConnected,
    /// `pipes.connected_account.reauthorization_needed`
    ConnectedAccountReauthorizationNeeded,
    /// `pipes.connected_account.disconnected`
    ConnectedAccountDisconnected,
    /// `pipes.connected_account.connection_failed`
    ConnectedAccountConnectionFailed,
    /// `pipes.account_connection.connected`
    AccountConnectionConnected,
    /// `pipes.account_connection.reauthorization_needed`
    AccountConnectionReauthorizationNeeded,
    /// `pipes.account_connection.disconnected`
    AccountConnectionDisconnected,
    /// `pipes.account_connection.connection_failed`
    AccountConnectionConnectionFailed,
    /// `pipes.account_connection.add_failed`
    AccountConnectionAddFailed,
}

impl EventType {
    /// Every type, in documentation order.
    pub const ALL: [EventType; 9] = [
        Self::ConnectedAccountConnected,
        Self::ConnectedAccountReauthorizationNeeded,
        Self::ConnectedAccountDisconnected,
        Self::ConnectedAccountConnectionFailed,
        Self::AccountConnectionConnected,
        Self::AccountConnectionReauthorizationNeeded,
        Self::AccountConnectionDisconnected,
        Self::AccountConnectionConnectionFailed,
        Self::AccountConnectionAddFailed,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectedAccountConnected => "pipes.connected_account.connected",
            Self::ConnectedAccountReauthorizationNeeded => "pipes.connected_account.reauthorization_needed",
            Self::ConnectedAccountDisconnected => "pipes.connected_account.disconnected",
            Self::ConnectedAccountConnectionFailed => "pipes.connected_account.connection_failed",
            Self::AccountConnectionConnected => "pipes.account_connection.connected",
            Self::AccountConnectionReauthorizationNeeded => "pipes.account_connection.reauthorization_needed",
            Self::AccountConnectionDisconnected => "pipes.account_connection.disconnected",
            Self::AccountConnectionConnectionFailed => "pipes.account_connection.connection_failed",
            Self::AccountConnectionAddFailed => "pipes.account_connection.add_failed",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}
