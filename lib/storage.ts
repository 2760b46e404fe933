// Reference-counted native storage shared by a tensor and its views, and the
// byte accounting behind kiln.memory().
import type { DeviceSpec } from './device';
import { native, type NativeStorage } from './native';

const liveBytes = { cpu: 0, cuda: 0 };

export class StorageRef {
  readonly native: NativeStorage;
  readonly bytes: number;
  readonly device: DeviceSpec;
  private refs = 1;

  private constructor(storage: NativeStorage, bytes: number, device: DeviceSpec) {
    this.native = storage;
    this.bytes = bytes;
    this.device = device;
    liveBytes[device.kind === 0 ? 'cpu' : 'cuda'] += bytes;
  }

  /** Allocates `bytes` on `device` (uninitialised). */
  static allocate(device: DeviceSpec, bytes: number): StorageRef {
    return new StorageRef(native.newStorage(device.kind, device.index, bytes), bytes, device);
  }

  retain(): this {
    this.refs += 1;
    return this;
  }

  /** Drops one reference; the memory goes back when the last one is dropped. */
  release(): void {
    this.refs -= 1;
    if (this.refs === 0) {
      this.native.free();
      liveBytes[this.device.kind === 0 ? 'cpu' : 'cuda'] -= this.bytes;
    }
  }
}

export function liveStorageBytes(): { cpu: number; cuda: number } {
  return { cpu: liveBytes.cpu, cuda: liveBytes.cuda };
}
