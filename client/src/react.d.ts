import type { Context, ReactNode, ReactElement } from 'react';
import type { RoastrStore, RoastrStoreState } from './zustand.js';

export { createRoastrStore } from './zustand.js';
export const RoastrContext: Context<RoastrStore | null>;
export function RoastrProvider(props: { store: RoastrStore; children?: ReactNode }): ReactElement;
export function useRoastrState<T = RoastrStoreState>(selector?: (s: RoastrStoreState) => T, store?: RoastrStore): T;
