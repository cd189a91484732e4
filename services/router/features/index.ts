/**
 * What the router adds around a request: A/B splits (arm choice and each arm's running results,
 * compared by Welch's t-test) and the response cache.
 */
export { armFor, chooseArm, Experiment, stickyKeyOf } from './experiment.ts';
export { cacheKeyOf, ResponseCache, type ResponseCacheOptions } from './response-cache.ts';
export { RunningStats, welchTTest, type WelchResult } from './welch.ts';
