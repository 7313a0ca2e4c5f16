/**
 * Schema of a load plan in Clover's jmeter_testplan.yaml form (load_spec + url_list), accepted unchanged.
 * The jmeter module owns this file; the release spec validates inline plans against it.
 */
export const cloverPlanSchema: Record<string, unknown> = {
  type: 'object',
  required: ['load_spec', 'url_list'],
  properties: {
    load_spec: {
      type: 'object',
      required: ['num_threads'],
      properties: {
        num_threads: { type: 'integer', minimum: 1 },
        loops: { type: 'integer', minimum: -1 },
        ramp_time: { type: 'number', minimum: 0 },
        duration: { type: 'number', minimum: 0 },
      },
    },
    url_list: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['url'],
        properties: {
          name: { type: 'string' },
          url: { type: 'string', minLength: 1 },
          method: { enum: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] },
          'user-agent': { type: 'string' },
        },
      },
    },
  },
};
