// Types of roastr-state-client (hand-written; the code is plain ESM).

export type Plan = 'free' | 'starter' | 'pro' | 'plus';
export type SubscriptionStatus = 'active' | 'trial' | 'past_due' | 'canceled';
export type ShieldLevel = 'tolerante' | 'balanceado' | 'estricto';

/** state_full, plus the local-only `ui` section. */
export interface RoastrState {
  auth: { userId: string | null; email: string | null; name: string | null };
  subscription: {
    plan: Plan | null; status: SubscriptionStatus | null; trial_days_remaining: number | null;
    trial_ends_at: string | null; current_period_start: string | null; current_period_end: string | null;
    polar_subscription_id: string | null; polar_customer_id: string | null;
    /** 0.6.0: the subscription ends when its period does (Polar's cancel at period end) */
    cancel_at_period_end: boolean | null;
  };
  persona: {
    identity: string | null; intolerance: string | null; tolerance: string | null;
    embeddings_generated_at: string | null; embeddings_model: string | null;
  };
  roasting: { enabled: boolean | null; roast_level: 1 | 2 | 3 | 4 | 5 | null; shield_level: ShieldLevel | null };
  usage: {
    monthly_roasts_used: number | null; monthly_roasts_limit: number | null; remaining_roasts: number | null;
    period_start: string | null; reset_date: string | null;
  };
  organization: null | { id: string; name: string; slug: string; role: 'owner' | 'admin' | 'member' };
  ui: UiState;
  /** version: the cursor (the server version this state is at); conflictResolution as in the design note */
  _meta: { version: number; lastSyncedAt: string | null; conflictResolution: 'pending' | 'none' };
}

export interface UiState {
  theme: 'light' | 'dark' | 'auto';
  language: 'es' | 'en';
  notifications_enabled: boolean;
  sidebar_collapsed: boolean;
  [key: string]: unknown;
}

/** Fields a user may write, as dotted paths. */
export interface UserChanges {
  'auth.name'?: string | null;
  'roasting.enabled'?: boolean;
  'roasting.roast_level'?: 1 | 2 | 3 | 4 | 5;
  'roasting.shield_level'?: ShieldLevel;
  'persona.identity'?: string | null;
  'persona.intolerance'?: string | null;
  'persona.tolerance'?: string | null;
}
export type UserField = keyof UserChanges;

export interface Status {
  state: 'online' | 'offline' | 'syncing';
  online: boolean;
  /** 'socket', 'http' (gateway polling), 'rest', 'socket+rest', or null */
  via: string | null;
  /** writes not yet confirmed */
  pending: number;
  conflicts: number;
  lastSyncedAt: string | null;
  cursor: number;
  /** a full sync ran in this session (persona text is loaded) */
  ready: boolean;
  /** persona fields with text that exists only in memory (pending or in conflict) */
  unsavedPersona: UserField[];
  error: { code: string; message: string } | null;
}

export interface Conflict {
  id: string;
  field: UserField;
  mine: unknown;
  server: unknown;
  serverVersion: number;
  /** false until the server's value is known (persona text is not in a PT409 detail) */
  serverKnown: boolean;
}

export interface PatchResult {
  version: number | null;
  applied: string[];
  /** conflicts raised on some of the write's fields (the rest was applied) */
  conflicts: Conflict[];
}

export interface PendingWrite {
  mutationId: string;
  changes: UserChanges;
  sent: boolean;
  /** set once confirmed, until the device's state reaches that version */
  version: number | null;
  /** the cursor the user saw when writing */
  seen: number | null;
}

export type ErrorCode = 'PT409' | '22023' | '22P02' | '42501' | 'PT402' | 'PT404' | 'NETWORK' | 'AUTH' | 'TIMEOUT' | 'CLOSED' | 'STORAGE' | string;

export class StateError extends Error {
  code: ErrorCode;
  /** the field the server's message names, if any */
  field: string | null;
  detail: unknown;
  hint: string | null;
  status: number | null;
  conflicts?: Conflict[];
}

export interface ClientEvents {
  change: { state: RoastrState; status: Status };
  conflict: Conflict;
  resolved: { conflict: Conflict; choice: 'mine' | 'server' | 'value' };
  confirmed: { mutationId: string; changes: UserChanges } & PatchResult;
  error: { code: ErrorCode; message: string; field: string | null; mutationId: string | null; changes: UserChanges; error: Error };
  unsavedPersona: UserField[];
  auth: StateError;
  /** the cursor's history is not the server's (failover, restore): the server's state replaced the device's */
  reset: { cursor: number; history: string | null };
}

export interface StateClient {
  readonly state: RoastrState;
  readonly status: Status;
  readonly conflicts: Conflict[];
  readonly pending: PendingWrite[];
  /** resolves once storage has been read */
  readonly loaded: Promise<void>;
  patch(changes: UserChanges): Promise<PatchResult>;
  resolve(conflict: Conflict | string, choice: 'mine' | 'server' | { value: unknown } | unknown): Promise<PatchResult>;
  setUi(partial: Partial<UiState>): void;
  subscribe(listener: (state: RoastrState, status: Status) => void): () => void;
  on<K extends keyof ClientEvents>(event: K, listener: (arg: ClientEvents[K]) => void): () => void;
  /** ask for a sync now */
  sync(): void;
  /** resolves when storage holds the latest snapshot */
  flush(): Promise<void>;
  /** a 'beforeunload' handler: asks to confirm while persona text is unsaved */
  beforeUnload(event?: { preventDefault?(): void; returnValue?: unknown }): string | undefined;
  installBeforeUnload(target?: { addEventListener: Function; removeEventListener: Function }): () => void;
  close(): Promise<void>;
}

export interface StorageAdapter {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<void>;
  remove(key: string): Promise<void>;
}

export interface TransportHandlers {
  cursor(): number;
  /** the history token of that cursor (opaque; null: none) */
  history?(): string | null;
  onUpdate(msg: { type: string | string[]; data: object; version: number; fields: string[]; history?: string }): void;
  /** since / fromHistory: the cursor and history the answer is from, when the transport knows them */
  onSync(msg: { changes: Array<{ field: string; value: unknown; version: number; updated_at?: string }>; cursor: number; history?: string | null; reset?: boolean; since?: number; fromHistory?: string | null; lastSyncedAt?: string | null }): void;
  onStatus(s: { online: boolean; writable: boolean; via: string | null; error?: string | null }): void;
  onAuthError?(err: StateError): void;
}

/** What createStateClient needs from a transport (write your own for tests or other backends). */
export interface Transport {
  start(handlers: TransportHandlers): void;
  patch(req: { changes: UserChanges; base_version: number; mutation_id: string }): Promise<{ version: number; applied: string[] }>;
  /** history: the token of the cursor `since` (null: a bare cursor) */
  sync(since: number, history?: string | null): Promise<{ changes: Array<{ field: string; value: unknown; version: number }>; cursor: number; history?: string | null; reset?: boolean; lastSyncedAt?: string | null }>;
  close(): void | Promise<void>;
  settleDelayMs?: number;
  /** state_full; read once after a whole sync for what no sync reports (auth.userId) */
  full?(): Promise<Omit<RoastrState, 'ui'>>;
}

export type TokenSource = string | (() => string | Promise<string>);

export function createStateClient(options: {
  transport: Transport;
  storage?: StorageAdapter;
  /** storage key; use one per user */
  key?: string;
  retryMinMs?: number;
  retryMaxMs?: number;
  settleDelayMs?: number;
  uuid?: () => string;
  now?: () => Date;
  timers?: { setTimeout: typeof setTimeout; clearTimeout: typeof clearTimeout };
  random?: () => number;
}): StateClient;

export function memoryStorage(map?: Map<string, string>): StorageAdapter & { entries(): [string, string][] };
export function localStorageAdapter(options?: { localStorage?: Storage; prefix?: string }): StorageAdapter;
export function indexedDbStorage(options?: { indexedDB?: IDBFactory; name?: string; store?: string }): StorageAdapter & { close(): Promise<void> };

export function gatewayTransport(options: {
  url: string;
  token: TokenSource;
  /** socket.io-client's io */
  io: (url: string, opts: object) => any;
  httpUrl?: string;
  fetch?: typeof fetch;
  pollMs?: number;
  fallbackAfterMs?: number;
  ackTimeoutMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  socketOptions?: object;
}): Transport;

export function postgrestTransport(options: {
  /** a supabase-js client (uses its rpc) */
  supabase?: { rpc(fn: string, args: object): PromiseLike<{ data: any; error: any; status?: number }>; schema?(s: string): any };
  url?: string;
  apikey?: string;
  token?: TokenSource;
  fetch?: typeof fetch;
  /** Content-Profile for a non-default schema (e.g. 'roastr_state') */
  schema?: string | null;
  pollMs?: number;
  /** a gatewayTransport for push; PostgREST is then used for writes and pulls */
  push?: Transport | null;
}): Transport;

export const FIELDS: readonly string[];
export const USER_FIELDS: readonly UserField[];
export const PERSONA_TEXT: readonly UserField[];
export const UI_DEFAULTS: Readonly<UiState>;
