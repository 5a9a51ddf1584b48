//! The error codes of the CAS protocol (CAS 3.0.3 §2.5.3 for validation, §2.7.3
//! for `/proxy`) and a refusal: a code with a short, fixed English description.
//! The description is a `&'static str` on purpose: it can never carry what the
//! caller sent (a ticket, a URL), so no answer and no log line echoes user input
//! or a secret. Details go to the log, written by the caller.

use std::fmt;

/// Every code Guichet answers with on the CAS endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CasCode {
    /// Not all of the required parameters were given (or one was repeated, or
    /// had a value the server does not support).
    InvalidRequest,
    /// The ticket does not meet the endpoint's validation specification: a proxy
    /// ticket at `/validate` or `/serviceValidate`.
    InvalidTicketSpec,
    /// The ticket is unknown, expired, already used, not a ticket at all, or did
    /// not come from a new login when `renew` was asked.
    InvalidTicket,
    /// The ticket is valid but was issued to another service (the ticket is then
    /// spent), or the `service` is not a service URL.
    InvalidService,
    /// The service may not perform proxy authentication.
    UnauthorizedServiceProxy,
    /// The `pgtUrl` is not an https URL, or the callback to it failed.
    InvalidProxyCallback,
    /// Guichet failed (store, directory): the client may retry.
    InternalError,
    /// `/proxy` only: the target service may not be proxied to.
    UnauthorizedService,
}

impl CasCode {
    /// The code as written in the `code` attribute (XML) or field (JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            CasCode::InvalidRequest => "INVALID_REQUEST",
            CasCode::InvalidTicketSpec => "INVALID_TICKET_SPEC",
            CasCode::InvalidTicket => "INVALID_TICKET",
            CasCode::InvalidService => "INVALID_SERVICE",
            CasCode::UnauthorizedServiceProxy => "UNAUTHORIZED_SERVICE_PROXY",
            CasCode::InvalidProxyCallback => "INVALID_PROXY_CALLBACK",
            CasCode::InternalError => "INTERNAL_ERROR",
            CasCode::UnauthorizedService => "UNAUTHORIZED_SERVICE",
        }
    }
}

impl fmt::Display for CasCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal the client is told about: the code, and a fixed sentence saying
/// what went wrong. Rendered by `responses` as an `authenticationFailure` or a
/// `proxyFailure`, or as the error page of `/login`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct CasError {
    pub code: CasCode,
    pub description: &'static str,
}

impl CasError {
    pub const fn new(code: CasCode, description: &'static str) -> Self {
        CasError { code, description }
    }

    /// `/serviceValidate` and the other validation endpoints without both
    /// parameters (the spec's own wording, §2.5.1).
    pub const fn validation_parameters_missing() -> Self {
        Self::new(
            CasCode::InvalidRequest,
            "'service' and 'ticket' parameters are both required",
        )
    }

    /// `/proxy` without both parameters (the spec's own wording, §2.7.2).
    pub const fn proxy_parameters_missing() -> Self {
        Self::new(
            CasCode::InvalidRequest,
            "'pgt' and 'targetService' parameters are both required",
        )
    }

    /// A parameter given more than once: which value counts would be a guess.
    pub const fn repeated_parameter() -> Self {
        Self::new(
            CasCode::InvalidRequest,
            "a parameter is given more than once",
        )
    }

    pub const fn unsupported_format() -> Self {
        Self::new(CasCode::InvalidRequest, "format must be XML or JSON")
    }

    pub const fn unsupported_method() -> Self {
        Self::new(CasCode::InvalidRequest, "method must be GET or POST")
    }

    /// Unknown, expired, already used, or not shaped like a ticket: the client is
    /// not told which (telling would help guessing).
    pub const fn ticket_not_recognized() -> Self {
        Self::new(CasCode::InvalidTicket, "ticket not recognized")
    }

    /// A proxy-granting ticket is presented where a service or proxy ticket is
    /// expected: it is never validated (and, being multi-use, never spent there).
    pub const fn granting_ticket_presented() -> Self {
        Self::new(
            CasCode::InvalidTicket,
            "a proxy-granting ticket cannot be validated",
        )
    }

    /// A proxy ticket at `/validate` or `/serviceValidate` (§2.4.1, §2.5).
    pub const fn proxy_ticket_not_accepted() -> Self {
        Self::new(
            CasCode::InvalidTicketSpec,
            "a proxy ticket is not accepted here: use proxyValidate",
        )
    }

    /// `renew` was asked but the ticket came from the single sign-on session
    /// (§2.5.3 puts this under INVALID_TICKET).
    pub const fn not_from_new_login() -> Self {
        Self::new(
            CasCode::InvalidTicket,
            "renew was asked but the ticket did not come from a new login",
        )
    }

    /// The ticket was issued to another service; it is spent all the same (§2.5.3).
    pub const fn service_mismatch() -> Self {
        Self::new(
            CasCode::InvalidService,
            "the ticket was not issued to this service",
        )
    }

    /// `service` is not an absolute http(s) URL Guichet could have issued a ticket to.
    pub const fn malformed_service() -> Self {
        Self::new(
            CasCode::InvalidService,
            "service is not an http or https URL",
        )
    }

    /// The service is not registered with Guichet.
    pub const fn unregistered_service() -> Self {
        Self::new(CasCode::InvalidService, "the service is not registered")
    }

    /// `pgtUrl` is not an absolute https URL (§2.5.4: "This URL MUST be HTTPS").
    pub const fn malformed_proxy_callback() -> Self {
        Self::new(CasCode::InvalidProxyCallback, "pgtUrl is not an https URL")
    }

    /// `pgtUrl` is not one of the callbacks the service's registration names.
    pub const fn unregistered_proxy_callback() -> Self {
        Self::new(
            CasCode::InvalidProxyCallback,
            "pgtUrl is not a proxy callback registered for this service",
        )
    }

    pub const fn unauthorized_service_proxy() -> Self {
        Self::new(
            CasCode::UnauthorizedServiceProxy,
            "the service may not obtain proxy tickets",
        )
    }

    /// `/proxy`: the target service is not a service that may be proxied to.
    pub const fn unauthorized_service() -> Self {
        Self::new(
            CasCode::UnauthorizedService,
            "the target service may not be proxied to",
        )
    }

    /// The store or the directory failed: the client may retry.
    pub const fn internal() -> Self {
        Self::new(CasCode::InternalError, "internal error, try again later")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_written_as_the_spec_names_them() {
        let all = [
            (CasCode::InvalidRequest, "INVALID_REQUEST"),
            (CasCode::InvalidTicketSpec, "INVALID_TICKET_SPEC"),
            (CasCode::InvalidTicket, "INVALID_TICKET"),
            (CasCode::InvalidService, "INVALID_SERVICE"),
            (
                CasCode::UnauthorizedServiceProxy,
                "UNAUTHORIZED_SERVICE_PROXY",
            ),
            (CasCode::InvalidProxyCallback, "INVALID_PROXY_CALLBACK"),
            (CasCode::InternalError, "INTERNAL_ERROR"),
            (CasCode::UnauthorizedService, "UNAUTHORIZED_SERVICE"),
        ];
        for (code, name) in all {
            assert_eq!(code.as_str(), name);
            assert_eq!(code.to_string(), name);
        }
    }

    #[test]
    fn an_error_displays_its_code_and_description() {
        let error = CasError::ticket_not_recognized();
        assert_eq!(error.to_string(), "INVALID_TICKET: ticket not recognized");
        assert_eq!(CasError::service_mismatch().code, CasCode::InvalidService);
        assert_eq!(CasError::not_from_new_login().code, CasCode::InvalidTicket);
    }
}
