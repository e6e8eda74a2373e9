import { TypedEventEmitter } from 'main-event'
import { describe, expect, it } from 'vitest'
import { eventSource } from '../../src/util/events.js'

interface Events {
  tick: CustomEvent<number>
}

/** An engine with a method an application must not reach through its events. */
class Engine extends TypedEventEmitter<Events> {
  commit(): void {}
}

describe('eventSource', () => {
  it('passes the engine events to listeners, and removes them', () => {
    const engine = new Engine()
    const source = eventSource<Events>(engine)
    const seen: number[] = []
    const listener = (e: CustomEvent<number>): void => {
      seen.push(e.detail)
    }
    source.addEventListener('tick', listener)
    engine.safeDispatchEvent('tick', { detail: 1 })
    source.removeEventListener('tick', listener)
    engine.safeDispatchEvent('tick', { detail: 2 })
    expect(seen).toEqual([1])
  })

  it('hands out listeners only: no engine method, no dispatch, and it cannot be changed', () => {
    const source = eventSource<Events>(new Engine())
    expect(Object.keys(source).sort()).toEqual(['addEventListener', 'removeEventListener'])
    expect('commit' in source).toBe(false)
    expect('dispatchEvent' in source).toBe(false)
    expect(Object.isFrozen(source)).toBe(true)
  })
})
