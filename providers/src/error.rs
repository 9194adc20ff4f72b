//! Why a request to a provider is refused, and how that is answered over HTTP (the one mapping,
//! next to the type: `leadflow::edge::AppError` converts every domain error the same way).

use leadflow::edge::AppError;
use leadflow::signature::SignatureError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("no webhook provider named {0:?}")]
    Unknown(String),
    /// Its delivery secret is not set: nothing is accepted unverified.
    #[error("webhook provider {0:?} is not configured")]
    NotConfigured(&'static str),
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// The delivery is not authentic.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A handshake that does not check out: a wrong verify token (`forbidden`), a missing or
    /// malformed challenge.
    #[error("{message}")]
    Handshake {
        forbidden: bool,
        code: &'static str,
        field: Option<&'static str>,
        message: &'static str,
    },
}

impl ProviderError {
    /// The stable machine-readable code, as answered.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::Unknown(_) => "unknown_provider",
            ProviderError::NotConfigured(_) => "provider_not_configured",
            ProviderError::MethodNotAllowed(_) => "method_not_allowed",
            ProviderError::Signature(e) => AppError::from(e.clone()).code(),
            ProviderError::Handshake { code, .. } => code,
        }
    }
}

impl From<ProviderError> for AppError {
    fn from(e: ProviderError) -> AppError {
        match e {
            ProviderError::Unknown(_) | ProviderError::NotConfigured(_) => {
                AppError::not_found(e.code(), e.to_string())
            }
            ProviderError::MethodNotAllowed(method) => AppError::MethodNotAllowed(method),
            ProviderError::Signature(e) => e.into(),
            ProviderError::Handshake {
                forbidden: true,
                code,
                message,
                ..
            } => AppError::Forbidden {
                code,
                message: message.to_string(),
            },
            ProviderError::Handshake {
                code,
                field,
                message,
                ..
            } => AppError::BadRequest {
                code,
                field: field.map(str::to_string),
                message: message.to_string(),
            },
        }
    }
}
