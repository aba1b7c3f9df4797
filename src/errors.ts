// Errors that carry the HTTP status Orchard answers with. Handlers throw them;
// http/errors.ts is the one place that turns any error into a status code.
// There is deliberately no 401 for devices: a 401 makes a device unenroll.

export class OrchardError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 410 | 413 | 415 | 422 | 429 | 503,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Malformed or incomplete input. */
export class BadRequest extends OrchardError {
  constructor(message: string) {
    super(400, message);
  }
}

/** The caller is known but not allowed: wrong certificate, missing AuthToken. */
export class Forbidden extends OrchardError {
  constructor(message: string) {
    super(403, message);
  }
}

export class NotFound extends OrchardError {
  constructor(message: string) {
    super(404, message);
  }
}

export class Conflict extends OrchardError {
  constructor(message: string) {
    super(409, message);
  }
}

/** The server declines to manage this user (UserAuthenticate, user TokenUpdate). */
export class Declined extends OrchardError {
  constructor(message: string) {
    super(410, message);
  }
}
