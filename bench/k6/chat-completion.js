// Seed 003's k6 script, as far as bench/k6_compare.py needs it: the non-stream and stream scenarios of
// /v1/chat/completions at constant arrival rates (k6 constant-arrival-rate), prompt variants short and cot
// taking turns, and the seed's custom Trends: llm_ttfb_ms (res.timings.waiting), llm_receiving_ms,
// llm_total_ms, llm_queue_ms (X-Queue-Time) and llm_tokens_per_sec (usage.completion_tokens). k6 reads a
// streamed body whole: for a stream, "TTFB" is the response headers, not the first token.
//
// Knobs (env): BASE, MODEL, NONSTREAM_RPS, STREAM_RPS, DURATION_S, MAX_TOKENS, PRE_VUS, MAX_VUS.
import http from 'k6/http';
import { check } from 'k6';
import { Trend } from 'k6/metrics';

const BASE = __ENV.BASE || 'http://127.0.0.1:8000';
const MODEL = __ENV.MODEL || 'mock-llm';
const NONSTREAM_RPS = Number(__ENV.NONSTREAM_RPS || 2);
const STREAM_RPS = Number(__ENV.STREAM_RPS || 1);
const DURATION = `${Number(__ENV.DURATION_S || 60)}s`;
const MAX_TOKENS = Number(__ENV.MAX_TOKENS || 64);
const PRE_VUS = Number(__ENV.PRE_VUS || 20);
const MAX_VUS = Number(__ENV.MAX_VUS || PRE_VUS);

const PROMPTS = {
  short: [{ role: 'user', content: 'In one sentence, what is a load test?' }],
  cot: [
    { role: 'system', content: 'You are a careful assistant. Think step by step and show your reasoning before the answer.' },
    { role: 'user', content: 'A service answers 40 requests per second with a p95 latency of 800 ms. How many requests are in flight on average, and why?' },
  ],
};
const VARIANTS = ['short', 'cot'];

const ttfb = new Trend('llm_ttfb_ms', true);
const receiving = new Trend('llm_receiving_ms', true);
const total = new Trend('llm_total_ms', true);
const queue = new Trend('llm_queue_ms', true);
const tps = new Trend('llm_tokens_per_sec');

const scenarios = {};
if (NONSTREAM_RPS > 0) {
  scenarios.chat_nonstream = {
    executor: 'constant-arrival-rate', rate: NONSTREAM_RPS, timeUnit: '1s', duration: DURATION,
    preAllocatedVUs: PRE_VUS, maxVUs: MAX_VUS, exec: 'nonstream',
  };
}
if (STREAM_RPS > 0) {
  scenarios.chat_stream = {
    executor: 'constant-arrival-rate', rate: STREAM_RPS, timeUnit: '1s', duration: DURATION,
    preAllocatedVUs: PRE_VUS, maxVUs: MAX_VUS, exec: 'stream',
  };
}

export const options = {
  scenarios,
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
  thresholds: {
    http_req_failed: ['rate<0.02'],
    // the seed's TTFB SLOs; they also make k6 report these tagged sub-metrics in the summary
    'llm_ttfb_ms{scenario:chat_stream,status:200,prompt:short}': ['p(95)<1000'],
    'llm_ttfb_ms{scenario:chat_stream,status:200,prompt:cot}': ['p(95)<3000'],
    'llm_ttfb_ms{scenario:chat_stream}': ['p(95)<100000'],
    'llm_ttfb_ms{scenario:chat_nonstream}': ['p(95)<100000'],
    'llm_total_ms{scenario:chat_stream}': ['p(95)<100000'],
    'llm_total_ms{scenario:chat_nonstream}': ['p(95)<100000'],
    'http_reqs{scenario:chat_stream}': ['count>=0'],
    'http_reqs{scenario:chat_nonstream}': ['count>=0'],
  },
};

function call(stream, scenario) {
  const prompt = VARIANTS[__ITER % VARIANTS.length];
  const body = { model: MODEL, messages: PROMPTS[prompt], stream, max_tokens: MAX_TOKENS };
  if (stream) body.stream_options = { include_usage: true };
  const headers = { 'Content-Type': 'application/json', Accept: stream ? 'text/event-stream' : 'application/json' };
  if (__ENV.API_KEY) headers.Authorization = `Bearer ${__ENV.API_KEY}`;
  const res = http.post(`${BASE}/v1/chat/completions`, JSON.stringify(body), { headers, tags: { prompt } });
  const tags = { scenario, prompt, status: String(res.status) };
  ttfb.add(res.timings.waiting, tags);
  receiving.add(res.timings.receiving, tags);
  total.add(res.timings.duration, tags);
  const q = res.headers['X-Queue-Time'];
  if (q !== undefined) queue.add(parseFloat(q), tags);
  check(res, { 'status 200': (r) => r.status === 200 });
  if (res.status !== 200 || !res.body) return;
  let usage = null;
  if (stream) {
    const i = res.body.lastIndexOf('"usage"');
    if (i >= 0) {
      const start = res.body.lastIndexOf('data: ', i);
      const end = res.body.indexOf('\n', i);
      try { usage = JSON.parse(res.body.slice(start + 6, end)).usage; } catch (e) { usage = null; }
    }
  } else {
    try { usage = JSON.parse(res.body).usage; } catch (e) { usage = null; }
  }
  if (usage && usage.completion_tokens && res.timings.duration > 0) {
    tps.add(usage.completion_tokens / (res.timings.duration / 1000), tags);
  }
}

export function nonstream() { call(false, 'chat_nonstream'); }
export function stream() { call(true, 'chat_stream'); }
