import type { StoreApi } from 'zustand/vanilla';
import type { Conflict, PatchResult, RoastrState, StateClient, Status, UiState, UserChanges } from './index.js';

export interface RoastrStoreState extends RoastrState {
  status: Status;
  conflicts: Conflict[];
  client: StateClient;
  patch(changes: UserChanges): Promise<PatchResult>;
  resolve(conflict: Conflict, choice: 'mine' | 'server' | { value: unknown } | unknown): Promise<PatchResult>;
  setUi(partial: Partial<UiState>): void;
  toggleRoasting(enabled: boolean): Promise<PatchResult>;
  sync(): void;
}

export type RoastrStore = StoreApi<RoastrStoreState> & { destroy(): void };

export function createRoastrStore(client: StateClient): RoastrStore;
export function latestRoastrStore(): RoastrStore | null;
