// Compiled by test/types.test.js (tsc --noEmit): the declarations describe
// the API as the README uses it.
import { io } from 'socket.io-client';
import { createStateClient, gatewayTransport, postgrestTransport, memoryStorage, localStorageAdapter, type Conflict, type RoastrState } from 'roastr-state-client';
import { createRoastrStore } from 'roastr-state-client/zustand';
import { useRoastrState, RoastrProvider } from 'roastr-state-client/react';

const client = createStateClient({
  transport: gatewayTransport({ url: 'https://gw.example', token: async () => 'jwt', io }),
  storage: memoryStorage(),
});
const rest = postgrestTransport({ url: 'https://x.supabase.co', apikey: 'k', token: 'jwt', push: gatewayTransport({ url: 'https://gw', token: 'jwt', io }) });
void rest;
void localStorageAdapter;
const level: 1 | 2 | 3 | 4 | 5 | null = client.state.roasting.roast_level;
void level;
client.patch({ 'roasting.enabled': false, 'persona.identity': 'x' }).then((r) => r.version);
// @ts-expect-error: not a field a user may write
client.patch({ 'usage.monthly_roasts_used': 1 });
client.on('conflict', (c: Conflict) => client.resolve(c, 'mine'));
client.on('error', (e) => console.log(e.code, e.field));
client.setUi({ theme: 'dark' });
const s: RoastrState = client.state;
void s;
const store = createRoastrStore(client);
store.getState().toggleRoasting(true);
export function Plan() {
  const plan = useRoastrState((st) => st.subscription.plan);
  return plan;
}
void RoastrProvider;
