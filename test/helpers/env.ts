import { inject } from 'vitest';

// Every test process talks to the run's DynamoDB Local and shares its secrets folder.
process.env.DYNAMODB_ENDPOINT = inject('dynamoEndpoint');
process.env.TABLE_NAME = inject('tableName');
process.env.DATA_DIR = inject('dataDir');
process.env.AWS_REGION = 'eu-west-3';
