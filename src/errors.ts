// Errors that carry the HTTP status Orchard answers with. Handlers throw them;
// http/errors.ts is the one place that turns any error into a status code.
// There is deliberately no 401 for devices: a 401 makes a device unenroll.

/**
 * The stable, machine-readable `code` of an API error answer, beside its
 * human `error` message (which may be reworded at any time). Scripts branch on
 * the code. A code is never renamed or reused; new ones may be added.
 */
export const ERROR_CODES = [
  // 400
  "bad_request",
  "invalid_json",
  "duplicate_json_key",
  "unknown_field",
  "invalid_parameter",
  "invalid_short_name",
  "invalid_guid",
  "invalid_fingerprint",
  "invalid_command",
  "invalid_push_certificate",
  "invalid_declaration",
  "invalid_ade_token",
  "invalid_ade_profile",
  "invalid_ade_settings",
  "invalid_machine_info",
  "too_many_ids",
  "malformed_authorization",
  "invalid_asset_id",
  "invalid_asset_reference",
  "invalid_profile",
  "invalid_credential",
  // 401, 403
  "unauthorized",
  "forbidden",
  "ade_not_assigned",
  "ade_identity_refused",
  // 404, 405, 408, 409, 410
  "not_found",
  "no_such_route",
  "method_not_allowed",
  "request_timeout",
  "conflict",
  "command_exists",
  "guid_in_use",
  "push_topic_change",
  "rebind_already_bound",
  "declaration_in_use",
  "declined",
  "asset_in_use",
  "ade_token_change",
  "ade_no_token",
  "ade_sync_running",
  "ade_release_refused",
  "ddm_forwarded",
  // 413, 414, 415, 422, 429
  "payload_too_large",
  "uri_too_long",
  "unsupported_media_type",
  "unprocessable",
  "unknown_asset_reference",
  "rate_limited",
  // 5xx
  "internal_error",
  "service_unavailable",
  "store_unavailable",
  "ade_upstream",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The code of an error that names none: the status's generic one. */
export function codeOfStatus(status: number): ErrorCode {
  switch (status) {
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
      return "request_timeout";
    case 409:
      return "conflict";
    case 410:
      return "declined";
    case 413:
      return "payload_too_large";
    case 414:
      return "uri_too_long";
    case 415:
      return "unsupported_media_type";
    case 422:
      return "unprocessable";
    case 429:
      return "rate_limited";
    case 503:
      return "service_unavailable";
    default:
      return status >= 500 ? "internal_error" : "bad_request";
  }
}

export class OrchardError extends Error {
  readonly code: ErrorCode;
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 410 | 413 | 415 | 422 | 429 | 502 | 503,
    message: string,
    code?: ErrorCode,
  ) {
    super(message);
    this.name = new.target.name;
    this.code = code ?? codeOfStatus(status);
  }
}

/** Malformed or incomplete input. */
export class BadRequest extends OrchardError {
  constructor(message: string, code: ErrorCode = "bad_request") {
    super(400, message, code);
  }
}

/** The caller is known but not allowed: wrong certificate, missing AuthToken. */
export class Forbidden extends OrchardError {
  constructor(message: string, code: ErrorCode = "forbidden") {
    super(403, message, code);
  }
}

export class NotFound extends OrchardError {
  constructor(message: string, code: ErrorCode = "not_found") {
    super(404, message, code);
  }
}

export class Conflict extends OrchardError {
  constructor(message: string, code: ErrorCode = "conflict") {
    super(409, message, code);
  }
}

/** The server declines to manage this user (UserAuthenticate, user TokenUpdate). */
export class Declined extends OrchardError {
  constructor(message: string) {
    super(410, message, "declined");
  }
}
