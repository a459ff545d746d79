// React: useRoastrState(selector) over the store of createRoastrStore, from
// a <RoastrProvider store={store}> above, else the store created last.
import React from 'react';
import { useStore } from 'zustand';
import { latestRoastrStore } from './zustand.js';

export { createRoastrStore } from './zustand.js';

export const RoastrContext = React.createContext(null);

export function RoastrProvider({ store, children }) {
  return React.createElement(RoastrContext.Provider, { value: store }, children);
}

const identity = (s) => s;

export function useRoastrState(selector = identity, store = undefined) {
  const fromContext = React.useContext(RoastrContext);
  const s = store ?? fromContext ?? latestRoastrStore();
  if (!s) throw new Error('useRoastrState: no store; call createRoastrStore(client) or wrap the app in <RoastrProvider store={…}>');
  return useStore(s, selector);
}
