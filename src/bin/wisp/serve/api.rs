//! The OpenAI wire format: requests as `wisp serve` reads them, errors in OpenAI's shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use wisp::model::chat::Message;
use wisp::model::sampler::SamplerConfig;

/// An error as OpenAI's API returns it: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_string),
            code: None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub fn server(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// `stop`: one string or a list.
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Clone, Debug, Default)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// `response_format`.
#[derive(Deserialize, Clone, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaSpec },
}

/// `json_schema`: its `name` and `strict` are accepted and not needed (the output always
/// follows the schema).
#[derive(Deserialize, Clone, Debug)]
pub struct JsonSchemaSpec {
    pub schema: Value,
}

/// What both endpoints share: sampling, limits, stop strings, streaming, log-probabilities.
#[derive(Deserialize, Clone, Debug, Default)]
pub struct Common {
    #[serde(default)]
    pub model: Option<String>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i64>,
    pub min_p: Option<f32>,
    pub seed: Option<i64>,
    pub stop: Option<Stop>,
    pub repetition_penalty: Option<f32>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub n: Option<u32>,
    pub response_format: Option<ResponseFormat>,
}

#[derive(Deserialize, Clone, Debug)]
pub struct ChatMessageIn {
    pub role: String,
    /// A string, or a list of content parts of which only `text` parts are supported.
    #[serde(default)]
    pub content: Option<Value>,
}

#[derive(Deserialize, Clone, Debug)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessageIn>,
    #[serde(flatten)]
    pub common: Common,
    #[serde(default)]
    pub logprobs: bool,
    pub top_logprobs: Option<u32>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum PromptIn {
    Text(String),
    Texts(Vec<String>),
    Ids(Vec<u32>),
}

#[derive(Deserialize, Clone, Debug)]
pub struct CompletionRequest {
    pub prompt: PromptIn,
    #[serde(flatten)]
    pub common: Common,
    /// Completions' `logprobs` is the number of alternatives (0–5).
    pub logprobs: Option<u32>,
    #[serde(default)]
    pub echo: bool,
}

/// Generation settings checked against OpenAI's ranges.
pub struct Settings {
    pub max_tokens: Option<usize>,
    pub sampler: SamplerConfig,
    pub stop: Vec<String>,
}

fn range(name: &str, v: f32, lo: f32, hi: f32) -> Result<f32, ApiError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::invalid(
            format!("'{name}' is {v}; it must be between {lo} and {hi}"),
            Some(name),
        ))
    }
}

impl Common {
    /// Sampling as OpenAI defines it: temperature 1 and no truncation unless asked for.
    pub fn settings(&self) -> Result<Settings, ApiError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::invalid(
                "only n = 1 is supported (one model, one GPU)",
                Some("n"),
            ));
        }
        let max = self.max_completion_tokens.or(self.max_tokens);
        if max == Some(0) {
            return Err(ApiError::invalid(
                "'max_tokens' must be at least 1",
                Some("max_tokens"),
            ));
        }
        let temperature = range("temperature", self.temperature.unwrap_or(1.0), 0.0, 2.0)?;
        let top_p = range("top_p", self.top_p.unwrap_or(1.0), 0.0, 1.0)?;
        let min_p = range("min_p", self.min_p.unwrap_or(0.0), 0.0, 1.0)?;
        let repeat_penalty = range(
            "repetition_penalty",
            self.repetition_penalty.unwrap_or(1.0),
            0.01,
            10.0,
        )?;
        let top_k = match self.top_k {
            None => 0,
            Some(k) if k >= 0 => k as usize,
            Some(k) => {
                return Err(ApiError::invalid(
                    format!("'top_k' is {k}; it must be 0 (off) or more"),
                    Some("top_k"),
                ))
            }
        };
        let seed = match self.seed {
            Some(s) => s as u64,
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x5eed, |d| d.as_nanos() as u64),
        };
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) if v.len() <= 4 => v.clone(),
            Some(Stop::Many(_)) => {
                return Err(ApiError::invalid("at most 4 stop sequences", Some("stop")))
            }
        };
        Ok(Settings {
            max_tokens: max.map(|m| m as usize),
            sampler: SamplerConfig {
                temperature,
                top_k,
                top_p,
                min_p,
                repeat_penalty,
                seed,
                ..SamplerConfig::default()
            },
            stop,
        })
    }
}

/// The messages as the chat template takes them; content parts other than text are refused.
pub fn messages(input: &[ChatMessageIn]) -> Result<Vec<Message>, ApiError> {
    if input.is_empty() {
        return Err(ApiError::invalid(
            "'messages' must hold at least one message",
            Some("messages"),
        ));
    }
    input
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let param = format!("messages[{i}]");
            if !matches!(
                m.role.as_str(),
                "system" | "user" | "assistant" | "developer"
            ) {
                return Err(ApiError::invalid(
                    format!(
                        "role '{}' is not supported (system, user, assistant)",
                        m.role
                    ),
                    Some(&param),
                ));
            }
            let role = if m.role == "developer" {
                "system"
            } else {
                &m.role
            };
            let content = match &m.content {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => {
                    let mut text = String::new();
                    for p in parts {
                        match (p.get("type").and_then(Value::as_str), p.get("text")) {
                            (Some("text"), Some(Value::String(t))) => text.push_str(t),
                            _ => {
                                return Err(ApiError::invalid(
                                    "only text content parts are supported",
                                    Some(&param),
                                ))
                            }
                        }
                    }
                    text
                }
                Some(_) => {
                    return Err(ApiError::invalid(
                        "'content' must be a string or a list of text parts",
                        Some(&param),
                    ))
                }
            };
            Ok(Message::new(role, &content))
        })
        .collect()
}

/// Parses a JSON body, answering a malformed one in OpenAI's shape.
pub fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}"), None))?;
    serde_json::from_value(v).map_err(|e| ApiError::invalid(format!("invalid request: {e}"), None))
}

/// `a == b` in time that depends only on the lengths (API keys).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_in_constant_time() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret!"));
    }

    #[test]
    fn settings_follow_openai_ranges() {
        let c: Common = serde_json::from_str(r#"{"temperature": 3}"#).expect("parses");
        assert_eq!(
            c.settings().err().map(|e| e.param),
            Some(Some("temperature".into()))
        );
        let c: Common = serde_json::from_str(r#"{"stop": "x", "max_tokens": 5}"#).expect("parses");
        let s = c.settings().expect("valid");
        assert_eq!((s.stop, s.max_tokens), (vec!["x".to_string()], Some(5)));
        assert!(parse::<ChatRequest>(b"{not json").is_err());
        let e = parse::<ChatRequest>(br#"{"messages": [], "temperature": "hot"}"#).unwrap_err();
        assert!(e.message.contains("invalid type"), "{}", e.message);
    }
}
