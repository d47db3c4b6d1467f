/**
 * A forward proxy on loopback that tunnels CONNECT requests (what undici's
 * proxy agent sends, for http:// targets too) and records each tunnel's
 * target, so a test can tell that a request went through it.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';

export interface ConnectProxy {
  server: Server;
  /** `http://127.0.0.1:<port>`, for HTTP_PROXY. */
  url: string;
  /** `host:port` of every tunnel asked for, in order. */
  tunnels: string[];
}

export async function startConnectProxy(): Promise<ConnectProxy> {
  const tunnels: string[] = [];
  const server = createServer();
  server.on('connect', (req, clientSocket, head) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(clientSocket);
      clientSocket.pipe(upstream);
    });
    upstream.on('error', () => clientSocket.destroy());
    clientSocket.on('error', () => upstream.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tunnels,
  };
}
