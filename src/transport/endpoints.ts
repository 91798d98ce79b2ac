/** The runtime's three sockets, one per role (requests, control, heartbeat). */
export interface Endpoints {
  main: string;
  control: string;
  heartbeat: string;
}

/** ipc endpoints inside a private directory (process and embedded modes). */
export function ipcEndpoints(dir: string): Endpoints {
  return { main: `ipc://${dir}/main`, control: `ipc://${dir}/control`, heartbeat: `ipc://${dir}/hb` };
}

/** `tcp://HOST:PORT` -> requests on PORT, control on PORT+1, heartbeat on PORT+2. */
export function tcpEndpoints(endpoint: string): Endpoints {
  const m = /^tcp:\/\/(.+):(\d+)$/.exec(endpoint);
  if (m === null) throw new TypeError(`endpoint must look like tcp://HOST:PORT, got ${JSON.stringify(endpoint)}`);
  const [, host, port] = m;
  const p = Number(port);
  return { main: endpoint, control: `tcp://${host}:${p + 1}`, heartbeat: `tcp://${host}:${p + 2}` };
}
