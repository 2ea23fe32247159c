// Sync, health and operation states as badges: a symbol, a word and a colour, so none of the
// three carries the meaning alone.
import { h } from './dom.js';

const HEALTH = {
  Healthy: ['♥', 'ok'], Progressing: ['◔', 'busy'], Degraded: ['✖', 'bad'],
  Suspended: ['‖', 'paused'], Missing: ['?', 'warn'], Unknown: ['?', 'unknown'],
};
const SYNC = { Synced: ['✔', 'ok'], OutOfSync: ['↻', 'warn'], Unknown: ['?', 'unknown'] };
const PHASE = {
  Succeeded: ['✔', 'ok'], Running: ['◔', 'busy'], Terminating: ['◔', 'busy'],
  Failed: ['✖', 'bad'], Error: ['✖', 'bad'],
};

function badge(table, value, title) {
  const [symbol, tone] = table[value] || ['?', 'unknown'];
  return h('span', { class: ['badge', tone], title: title || value || 'Unknown' },
    h('span', { 'aria-hidden': 'true' }, symbol), ' ', value || 'Unknown');
}

export const healthBadge = (status, message) => badge(HEALTH, status, message);
export const syncBadge = (status, title) => badge(SYNC, status, title);
export const phaseBadge = (phase, message) => badge(PHASE, phase, message);

export const HEALTH_STATES = Object.keys(HEALTH);
export const SYNC_STATES = Object.keys(SYNC);
