import { MemoryStore } from '../../src/store/memory-store.js'
import { kvStoreSuite } from './kv-store-suite.js'

kvStoreSuite('MemoryStore', { create: async () => new MemoryStore() })
