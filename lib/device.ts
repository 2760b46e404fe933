// Device names ('cpu', 'cuda', 'cuda:N') and their availability.
import { DeviceError } from './errors';
import { native } from './native';

export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

/** A parsed device: kind 0 = CPU, 1 = CUDA (codes of native/include/kiln/device.h). */
export interface DeviceSpec {
  kind: 0 | 1;
  index: number;
  name: Device; // normalized: 'cpu' or 'cuda:N'
}

const CPU: DeviceSpec = { kind: 0, index: 0, name: 'cpu' };

/**
 * Parses and checks a device name. CUDA devices must be available: otherwise a
 * DeviceError says why (built without CUDA, no driver, old driver, no GPU).
 */
export function resolveDevice(op: string, device: unknown): DeviceSpec {
  if (device === undefined || device === 'cpu') return CPU;
  const m = typeof device === 'string' ? /^cuda(?::(\d+))?$/.exec(device) : null;
  if (m === null) {
    throw new DeviceError(`kiln: ${op}: unknown device ${JSON.stringify(device)}; expected 'cpu', 'cuda' or 'cuda:N'`);
  }
  const index = m[1] === undefined ? 0 : Number(m[1]);
  const cuda = native.info().cuda;
  if (!cuda.available) {
    throw new DeviceError(`kiln: ${op}: device '${String(device)}' requested but CUDA is unavailable: ${cuda.reason ?? 'unknown reason'}`);
  }
  if (index >= cuda.devices.length) {
    throw new DeviceError(`kiln: ${op}: device '${String(device)}' does not exist (${cuda.devices.length} CUDA device(s))`);
  }
  return { kind: 1, index, name: `cuda:${index}` };
}
