//! Every error the API answers, as `{"error": {"code": "...", "message": "..."}}` with a 4xx
//! or 5xx status, mapped in one place from the control layer's classification ([`Fault`]):
//! refused → 4xx, transient → 503 with `Retry-After`, internal → 500 without internals.
//! The extractors here turn bad JSON, queries and paths into the same shape.

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use herald_control::{ControlError, Fault};
use herald_wire::InvalidInput;
use serde::{Serialize, de::DeserializeOwned};
use utoipa::ToSchema;

/// An error answer.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request's field at fault, as the API names it.
    pub field: Option<String>,
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_input`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `refused`, `too_large`, `unsupported_media_type`, `method_not_allowed`,
    /// `unavailable`, `internal`.
    #[schema(example = "not_found")]
    code: String,
    /// For people: what is wrong, in one line.
    #[schema(example = "no campaign with key \"spring-sale\"")]
    message: String,
    /// For a field that cannot be valid, which one: `email`, `attrs.age`, `users[3].timezone`,
    /// `audience.all[1].in`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "attrs.age")]
    field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        Self::invalid(e.0)
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let message = herald_control::error::one_line(std::iter::successors(
            Some(&e as &(dyn std::error::Error + 'static)),
            |e| e.source(),
        ));
        let field = e.field().map(str::to_owned);
        if let ControlError::Field { .. } = &e {
            let mut error = Self::invalid(message);
            error.field = field;
            return error;
        }
        if let ControlError::Unmet { .. } = &e {
            let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", message);
            error.field = field;
            return error;
        }
        match e.fault() {
            Fault::Invalid => Self::invalid(message),
            Fault::NotFound => Self::not_found(message),
            Fault::Conflict | Fault::State => Self::new(StatusCode::CONFLICT, "conflict", message),
            Fault::Unmet => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", message),
            Fault::Transient => {
                tracing::warn!(error = %message, "answered 503");
                Self::unavailable(message)
            }
            Fault::Internal => {
                tracing::error!(error = %message, "answered 500");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error; the server's log has the details (look for this response's x-request-id)",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match self.status {
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"herald\""),
                );
            }
            _ => {}
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON body: `application/json`, within the size limit, every field known and valid.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// An optional JSON body: an empty body is `T::default()`.
pub struct OptionalBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|l| l == "0")
            || (!req.headers().contains_key(header::CONTENT_TYPE)
                && !req.headers().contains_key(header::TRANSFER_ENCODING)
                && !req.headers().contains_key(header::CONTENT_LENGTH));
        if empty {
            return Ok(Self(T::default()));
        }
        Body::from_request(req, state).await.map(|Body(v)| Self(v))
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON, sent with `Content-Type: application/json`",
        ),
        JsonRejection::JsonDataError(e) => ApiError::invalid(serde_message(&e.body_text())),
        JsonRejection::JsonSyntaxError(e) => ApiError::invalid(format!(
            "the body is not valid JSON: {}",
            serde_message(&e.body_text())
        )),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the body is over the limit of {} KiB ({} KiB for a batch of users, {} KiB \
                     for a list of opt-outs or suppressions)",
                    crate::BODY_LIMIT / 1024,
                    crate::BATCH_BODY_LIMIT / 1024,
                    crate::LIST_BODY_LIMIT / 1024
                ),
            )
        }
        other => ApiError::invalid(other.body_text()),
    }
}

/// serde's message without axum's preamble ("Failed to deserialize the JSON body into the
/// target type: ").
fn serde_message(text: &str) -> String {
    let text = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .or_else(|| text.strip_prefix("Failed to parse the request body as JSON: "))
        .unwrap_or(text);
    text.to_owned()
}

/// Query parameters: every one known and valid.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e| {
                let text = e.body_text();
                ApiError::invalid(
                    text.strip_prefix("Failed to deserialize query string: ")
                        .map(|t| format!("query: {t}"))
                        .unwrap_or(text),
                )
            })
    }
}

/// One named segment of the matched path, e.g. `key` of `/v1/campaigns/{key}`.
pub async fn path_param(parts: &mut Parts, name: &str) -> ApiResult<String> {
    let params = axum::extract::RawPathParams::from_request_parts(parts, &())
        .await
        .map_err(|e| ApiError::invalid(e.body_text()))?;
    params
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
        .ok_or_else(|| ApiError::not_found(format!("no {name} in the path")))
}
