//! Errors as Argo CD's API returns them: grpc-gateway's `{"error", "code", "message"}` with
//! the gRPC status code and the HTTP status grpc-gateway maps it to.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// gRPC status codes Argo CD's API answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    InvalidArgument = 3,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl Code {
    fn http(self) -> StatusCode {
        match self {
            Code::InvalidArgument | Code::FailedPrecondition => StatusCode::BAD_REQUEST,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidArgument, message)
    }

    pub fn not_found(what: &str, name: &str) -> ApiError {
        ApiError::new(Code::NotFound, format!("{what} \"{name}\" not found"))
    }

    /// Argo CD's answer to a caller without the permission: it names neither the rule nor
    /// whether the object exists.
    pub fn denied() -> ApiError {
        ApiError::new(Code::PermissionDenied, "permission denied")
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Unauthenticated, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Internal, message)
    }
}

/// A Kubernetes API error, translated.
impl From<kube::Error> for ApiError {
    fn from(e: kube::Error) -> ApiError {
        match &e {
            kube::Error::Api(status) => {
                let code = match status.code {
                    400 | 422 => Code::InvalidArgument,
                    403 => Code::PermissionDenied,
                    404 => Code::NotFound,
                    409 if status.reason == "AlreadyExists" => Code::AlreadyExists,
                    409 => Code::FailedPrecondition,
                    429 => Code::ResourceExhausted,
                    503 => Code::Unavailable,
                    _ => Code::Internal,
                };
                ApiError::new(code, status.message.clone())
            }
            _ => ApiError::new(
                Code::Unavailable,
                format!("the cluster cannot be reached: {e}"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": self.message, "code": self.code as i32, "message": self.message});
        (self.code.http(), axum::Json(body)).into_response()
    }
}

/// Answers made outside the handlers — a query or path parameter of the wrong type, an
/// unknown path, a method a path does not take — come as plain text from the router; turn
/// them into the same error shape as everything else, so clients parse one format.
pub async fn plain_errors_as_json(response: Response) -> Response {
    let status = response.status();
    let is_text = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !status.is_client_error() || !is_text {
        return response;
    }
    let code = match status {
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => Code::NotFound,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
        _ => Code::InvalidArgument,
    };
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let message = if text.trim().is_empty() {
        status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_lowercase()
    } else {
        text.trim().to_string()
    };
    let body = json!({"error": message, "code": code as i32, "message": message});
    let mut out = (status, axum::Json(body)).into_response();
    // Keep what the router said beyond the body (`Allow` on a 405).
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
