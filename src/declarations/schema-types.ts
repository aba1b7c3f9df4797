// The shape of the compiled schema (schema-data.ts): only what validation
// needs of Apple's declaration YAML (apple/device-management), nothing of its
// prose. scripts/compile-ddm-schema.ts writes it; validate.ts reads it.

/** A payload key's type, as Apple's `type: <...>` names it. */
export type ValueType = "string" | "integer" | "real" | "boolean" | "dictionary" | "array" | "data" | "date" | "any";

/** The four declaration families: a declaration's Type is `com.apple.<family>.<name>`. */
export type DeclarationFamily = "activation" | "configuration" | "asset" | "management";

export const DECLARATION_FAMILIES: readonly DeclarationFamily[] = ["activation", "configuration", "asset", "management"];

/** One value's schema: a payload key, an array's item, or a declaration's whole Payload (a dictionary). */
export interface KeySchema {
  type: ValueType;
  /** presence: required (absent means optional). */
  required?: true;
  /** rangelist: the allowed values. */
  values?: ReadonlyArray<string | number | boolean>;
  /** range: bounds of a number. */
  min?: number;
  max?: number;
  /** A dictionary's subkeys by name, in Apple's order. */
  keys?: ReadonlyArray<NamedKeySchema>;
  /** A dictionary's `ANY` subkey: the schema of every key not named in `keys`. */
  anyKey?: KeySchema;
  /** A dictionary whose content Apple does not describe (no subkeys): any key, not validated. */
  open?: true;
  /** An array's item (its single subkey); absent: items not validated. */
  items?: KeySchema;
}

export interface NamedKeySchema extends KeySchema {
  key: string;
}

export interface DeclarationTypeSchema {
  /** e.g. com.apple.configuration.passcode.settings */
  type: string;
  family: DeclarationFamily;
  /** Apple's title, e.g. "Passcode:Settings". */
  title: string;
  /** The Payload dictionary. */
  payload: KeySchema;
}

export interface SchemaData {
  /** Where the data came from: "apple/device-management". */
  source: string;
  /** The OS release the schema describes, from its README: "iOS 18.2/macOS 15.2". */
  release: string;
  declarations: ReadonlyArray<DeclarationTypeSchema>;
  /** Status item names (declarative/status/*.yaml statusitemtype), sorted. */
  statusItems: ReadonlyArray<string>;
  /** MDM command RequestTypes (mdm/commands/*.yaml requesttype), sorted. */
  requestTypes: ReadonlyArray<string>;
}
