// nitro-wallet on EC2 with AWS Nitro Enclaves.
//
//   clients in the VPC ──TCP 443──► internal NLB ──TCP 8443 (TLS passthrough)──► ASG instances
//   instance: nitro-wallet serve (systemd) ──vsock──► enclave (EIF measured in CI)
//             enclave ──vsock 8000──► vsock-proxy ──► KMS interface endpoint
//             serve ──► Secrets Manager interface endpoint (key records), IMDSv2 (role credentials)
//
// No NAT and no internet gateway: the instances reach only the VPC endpoints (KMS, Secrets
// Manager, CloudFormation for cfn-signal, optionally SSM) and S3 through the gateway endpoint
// (the artifacts and Amazon Linux's package repositories).

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Stage } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as cr from 'aws-cdk-lib/custom-resources';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { ATTESTATION_KEY, keyPolicy } from './key-policy';
import { DeployInputError, Measurements, sha256File } from './measurements';
import { deployFilesBundle, renderUserData, USER_DATA_LIMIT } from './user-data';

/** The enclave's vsock CID: what `serve` dials (vsock://16:5000) and the supervisor assigns. */
const ENCLAVE_CID = 16;
/** Where `serve` listens on the instance; the NLB maps 443 to it, so no privileged port. */
const API_PORT = 8443;
/** The VPC's range, and the default clientCidr (a literal, so that cdk-nag can check the rule). */
const VPC_CIDR = '10.42.0.0/16';

export interface NitroWalletStackProps extends StackProps {
  /** The enclave image to run (deploy/out/measurements.json). */
  readonly measurements: Measurements;
  /** PCR0s that may still decrypt while instances roll to the new image. */
  readonly previousPcr0s?: string[];
  /** The `nitro-wallet` host binary (deploy/out/nitro-wallet, from build-host.sh). */
  readonly hostBinaryPath: string;
  /** deploy/ in the repository (user-data.sh, systemd/, enclave/). */
  readonly deployDir: string;
  /** Key administrators; default: the account root (delegating to IAM, which covers the
   *  CloudFormation execution role that must be able to update the key). */
  readonly adminPrincipalArns?: string[];
  /** `name=<sha256 hex>,...`: the SHA-256 of each API token, never the tokens. */
  readonly apiTokenSha256s: string;
  /** An instance type with Nitro Enclaves support and at least 4 vCPUs. */
  readonly instanceType?: string;
  readonly enclaveCpuCount?: number;
  readonly enclaveMemoryMib?: number;
  readonly minCapacity?: number;
  readonly maxCapacity?: number;
  /** Secrets Manager name prefix of the key records. */
  readonly secretsPrefix?: string;
  /** A secret `{"cert": PEM, "key": PEM}` with the API's TLS certificate; default self-signed. */
  readonly tlsSecretName?: string;
  /** Who may connect to the API (client IPs are preserved by the NLB); default the VPC. */
  readonly clientCidr?: string;
  /** The KMS alias of the key. */
  readonly keyAlias?: string;
  /** Session Manager access (adds its three interface endpoints). */
  readonly enableSsm?: boolean;
}

const ROLE_OR_ROOT_ARN = /^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:(root|role\/[\w+=,.@/-]+|user\/[\w+=,.@/-]+)$/;

export class NitroWalletStack extends Stack {
  constructor(scope: Construct, id: string, props: NitroWalletStackProps) {
    super(scope, id, props);
    const m = props.measurements;
    const instanceType = props.instanceType ?? 'c6i.xlarge';
    const enclaveCpuCount = props.enclaveCpuCount ?? 2;
    const enclaveMemoryMib = props.enclaveMemoryMib ?? 2048;
    const minCapacity = props.minCapacity ?? 2;
    const maxCapacity = props.maxCapacity ?? Math.max(minCapacity + 1, 4);
    const secretsPrefix = props.secretsPrefix ?? 'nitro-wallet/keys/';
    checkInputs(props, instanceType, enclaveCpuCount, enclaveMemoryMib, minCapacity, maxCapacity, secretsPrefix);
    const pcr0s = [m.pcr0, ...(props.previousPcr0s ?? []).filter((p) => p !== m.pcr0)];

    // ---- network: isolated subnets, endpoints instead of NAT ----
    const vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(VPC_CIDR),
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
    });
    const s3Endpoint = vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    // Flow logs of all traffic, kept a year: what reached the instances and the endpoints, and
    // what was rejected, for an investigation after the fact.
    vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(
        new logs.LogGroup(this, 'FlowLogGroup', { retention: logs.RetentionDays.ONE_YEAR, removalPolicy: RemovalPolicy.RETAIN }),
      ),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });
    const endpoints: [string, ec2.InterfaceVpcEndpointAwsService][] = [
      ['Kms', ec2.InterfaceVpcEndpointAwsService.KMS],
      ['SecretsManager', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
      ['CloudFormation', ec2.InterfaceVpcEndpointAwsService.CLOUDFORMATION],
    ];
    if (props.enableSsm) {
      endpoints.push(
        ['Ssm', ec2.InterfaceVpcEndpointAwsService.SSM],
        ['SsmMessages', ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES],
        ['Ec2Messages', ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES],
      );
    }
    // The instances' security group: in, only the API from the load balancer; out, only HTTPS
    // to the interface endpoints and to S3 (the gateway endpoint). There is no other route (no
    // NAT, no internet gateway), and if one were added later these rules would still hold.
    const sg = new ec2.SecurityGroup(this, 'InstanceSecurityGroup', {
      vpc,
      allowAllOutbound: false,
      description: 'nitro-wallet instances: the HTTPS API from the NLB in, HTTPS to the VPC endpoints and S3 out',
    });
    // The interface endpoints share one group: 443 in from the instances only, nothing out.
    const endpointSg = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc,
      allowAllOutbound: false,
      description: 'nitro-wallet interface endpoints: HTTPS from the nitro-wallet instances only',
    });
    endpointSg.connections.allowFrom(sg, ec2.Port.tcp(443), 'nitro-wallet instances to the interface endpoints');
    const interfaceEndpoints = endpoints.map(([name, service]) =>
      // Private DNS: kms.<region>.amazonaws.com resolves to the endpoint, so the vsock-proxy's
      // allowlisted name and the TLS certificate the enclave checks stay the regional ones.
      vpc.addInterfaceEndpoint(name, {
        service,
        privateDnsEnabled: true,
        open: false,
        securityGroups: [endpointSg],
        subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      }),
    );
    // S3 (the artifacts, Amazon Linux's package repositories) is reached through the gateway
    // endpoint, whose addresses are the region's AWS-managed prefix list. Its id differs per
    // region and CloudFormation has no attribute for it, so a custom resource looks it up at
    // deploy time (ec2:DescribeManagedPrefixLists, read-only).
    // Its function gets a role of its own that may write only to its log group (instead of the
    // AWS managed AWSLambdaBasicExecutionRole, which may write to any).
    const lookupLogs = new logs.LogGroup(this, 'S3PrefixListLookupLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const lookupRole = new iam.Role(this, 'S3PrefixListLookupRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'nitro-wallet: looks up the id of the S3 managed prefix list at deploy time',
    });
    lookupLogs.grantWrite(lookupRole);
    const s3PrefixList = new cr.AwsCustomResource(this, 'S3PrefixList', {
      role: lookupRole,
      logGroup: lookupLogs,
      onUpdate: {
        service: 'EC2',
        action: 'describeManagedPrefixLists',
        parameters: {
          Filters: [{ Name: 'prefix-list-name', Values: [`com.amazonaws.${this.region}.s3`, `cn.com.amazonaws.${this.region}.s3`] }],
        },
        physicalResourceId: cr.PhysicalResourceId.of(`s3-prefix-list-${this.region}`),
        outputPaths: ['PrefixLists.0.PrefixListId'],
      },
      policy: cr.AwsCustomResourcePolicy.fromSdkCalls({ resources: cr.AwsCustomResourcePolicy.ANY_RESOURCE }),
      installLatestAwsSdk: false,
    });
    sg.addEgressRule(
      ec2.Peer.prefixList(s3PrefixList.getResponseField('PrefixLists.0.PrefixListId')),
      ec2.Port.tcp(443),
      'S3 through the gateway endpoint: the artifacts and the Amazon Linux repositories',
    );
    NagSuppressions.addResourceSuppressions(
      s3PrefixList,
      [
        {
          id: 'AwsSolutions-IAM5',
          appliesTo: ['Resource::*'],
          reason:
            'ec2:DescribeManagedPrefixLists, the only action of this policy, is read-only and supports no resource-level ' +
            'permissions (IAM accepts only "*" for EC2 Describe actions)',
        },
      ],
      true,
    );

    // ---- the instance role: least privilege ----
    const role = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'nitro-wallet parent instance; its credentials also serve the enclave for KMS',
    });
    const secretArn = (name: string) => `arn:${this.partition}:secretsmanager:${this.region}:${this.account}:secret:${name}`;
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'KeyRecords',
        // Records are created once and never overwritten (no PutSecretValue, no delete): a
        // compromised parent cannot replace or destroy a key record.
        actions: ['secretsmanager:CreateSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        resources: [secretArn(`${secretsPrefix}*`)],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ListKeyRecords',
        // ListSecrets cannot be scoped to resources (IAM supports only "*"); the host filters
        // by prefix. BatchGetSecretValue needs "*" too and still checks GetSecretValue on each.
        actions: ['secretsmanager:ListSecrets', 'secretsmanager:BatchGetSecretValue'],
        resources: ['*'],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'AttestedGenerateRandom',
        // Not a key operation, so it cannot be granted in the key policy: same PCR0 condition.
        actions: ['kms:GenerateRandom'],
        resources: ['*'],
        conditions: { StringEqualsIgnoreCase: { [ATTESTATION_KEY]: pcr0s } },
      }),
    );
    if (props.tlsSecretName) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'TlsCertificate',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [secretArn(`${props.tlsSecretName}-??????`)],
        }),
      );
    }
    if (props.enableSsm) {
      role.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'));
    }

    NagSuppressions.addResourceSuppressions(
      role,
      [
        {
          id: 'AwsSolutions-IAM5',
          // The account is <AWS::AccountId>, or its number when the CLI knows it (CDK_DEFAULT_ACCOUNT).
          appliesTo: [
            {
              regex: `/^Resource::arn:<AWS::Partition>:secretsmanager:${this.region}:(<AWS::AccountId>|[0-9]{12}):secret:${escapeRegExp(secretsPrefix)}\\*$/`,
            },
          ],
          reason:
            'Key records are one secret per wallet address, created at run time, so their names are known only by ' +
            'prefix: the prefix is the narrowest scope. The actions are CreateSecret, GetSecretValue and ' +
            'DescribeSecret (never overwrite or delete), and a record is a KMS ciphertext that only the attested ' +
            'enclave image can decrypt (key policy)',
        },
        {
          id: 'AwsSolutions-IAM5',
          appliesTo: ['Resource::*'],
          reason:
            'secretsmanager:ListSecrets and BatchGetSecretValue support no resource-level permissions (BatchGet still ' +
            'needs GetSecretValue on each secret, which is scoped to the prefix); kms:GenerateRandom is not a key ' +
            'operation and has no resource, and is allowed only with the attested PCR0 (condition)',
        },
        ...(props.enableSsm
          ? [
              {
                id: 'AwsSolutions-IAM4',
                appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore'],
                reason:
                  'Session Manager is opt-in (-c enableSsm=true); AWS maintains this policy for what the SSM agent ' +
                  'calls. It grants nothing on the key or the key records',
              },
            ]
          : []),
      ],
      true,
    );

    // ---- the KMS key: its policy, generated from the measurements, is the only access path ----
    const admins = props.adminPrincipalArns?.length ? props.adminPrincipalArns : [new iam.AccountRootPrincipal().arn];
    const key = new kms.CfnKey(this, 'WalletKey', {
      description: `nitro-wallet key records; decrypt only by the enclave image with PCR0 ${m.pcr0}`,
      keySpec: 'SYMMETRIC_DEFAULT',
      keyUsage: 'ENCRYPT_DECRYPT',
      enableKeyRotation: true,
      pendingWindowInDays: 30,
      keyPolicy: keyPolicy(pcr0s, role.roleArn, admins),
    });
    // Losing the key loses every wallet: keep it when the stack goes.
    key.applyRemovalPolicy(RemovalPolicy.RETAIN);
    new kms.CfnAlias(this, 'WalletKeyAlias', { aliasName: props.keyAlias ?? 'alias/nitro-wallet', targetKeyId: key.ref });

    // ---- artifacts: uploaded as they are, verified by SHA-256 on the instance ----
    const eif = new s3assets.Asset(this, 'EnclaveImage', { path: m.eifPath });
    const hostBinary = new s3assets.Asset(this, 'HostBinary', { path: props.hostBinaryPath });
    // Written into the cloud assembly directory (cdk.out), which is throw-away like the bundle.
    const outdir = Stage.of(this)?.outdir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'nitro-wallet-'));
    fs.mkdirSync(outdir, { recursive: true });
    const bundlePath = path.join(outdir, 'nitro-wallet-deploy-files.json');
    fs.writeFileSync(bundlePath, deployFilesBundle(props.deployDir));
    const deployFiles = new s3assets.Asset(this, 'DeployFiles', { path: bundlePath });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'Artifacts',
        actions: ['s3:GetObject'],
        resources: [eif, hostBinary, deployFiles].map((a) => a.bucket.arnForObjects(a.s3ObjectKey)),
      }),
    );

    // ---- instances ----
    const asgLogicalId = 'WalletInstances';
    const userDataScript = renderUserData(fs.readFileSync(path.join(props.deployDir, 'user-data.sh'), 'utf-8'), {
      REGION: m.region,
      EIF_URL: eif.s3ObjectUrl,
      EIF_SHA256: m.eifSha256,
      EXPECTED_PCR0: m.pcr0,
      HOST_BINARY_URL: hostBinary.s3ObjectUrl,
      HOST_BINARY_SHA256: sha256File(props.hostBinaryPath),
      DEPLOY_FILES_URL: deployFiles.s3ObjectUrl,
      DEPLOY_FILES_SHA256: sha256File(bundlePath),
      KMS_KEY_ID: key.attrArn,
      SECRETS_PREFIX: secretsPrefix,
      API_TOKEN_SHA256S: props.apiTokenSha256s,
      TLS_SECRET_ID: props.tlsSecretName ?? '',
      ENCLAVE_CPU_COUNT: String(enclaveCpuCount),
      ENCLAVE_MEMORY_MIB: String(enclaveMemoryMib),
      ENCLAVE_CID: String(ENCLAVE_CID),
      LISTEN_PORT: String(API_PORT),
      CFN_STACK: this.stackName,
      CFN_RESOURCE: asgLogicalId,
    });
    // Tokens become CloudFormation references of a few dozen characters at most.
    if (Buffer.byteLength(userDataScript) > USER_DATA_LIMIT - 1024) {
      throw new DeployInputError(`user data is ${Buffer.byteLength(userDataScript)} bytes, too close to EC2's 16 KiB limit`);
    }

    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: ec2.MachineImage.latestAmazonLinux2023(),
      instanceType: new ec2.InstanceType(instanceType),
      role,
      securityGroup: sg,
      userData: ec2.UserData.custom(userDataScript),
      nitroEnclaveEnabled: true,
      // IMDSv2 only, hop limit 1: `serve` runs natively on the instance (not in a container),
      // so one hop suffices, and no container on the instance can reach the role's
      // credentials through a bridge network (that would take 2).
      httpEndpoint: true,
      httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
      httpPutResponseHopLimit: 1,
      instanceMetadataTags: false,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(16, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3, deleteOnTermination: true }),
        },
      ],
    });

    const asg = new autoscaling.AutoScalingGroup(this, 'Instances', {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      launchTemplate,
      minCapacity,
      maxCapacity,
      // The load balancer's /readyz check also replaces an instance whose enclave stays down;
      // the grace period covers boot, package installation and the enclave's start.
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
        additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
        gracePeriod: Duration.minutes(15),
      }),
      // user-data.sh signals when /readyz answers: a new image or configuration rolls one
      // instance at a time and stops (and rolls back) at the first that does not come up.
      signals: autoscaling.Signals.waitForAll({ timeout: Duration.minutes(20) }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: minCapacity,
        waitOnResourceSignals: true,
        pauseTime: Duration.minutes(20),
      }),
    });
    (asg.node.defaultChild as autoscaling.CfnAutoScalingGroup).overrideLogicalId(asgLogicalId);
    // No instance before its network works: the rules that refer to another security group or
    // to the S3 prefix list are resources of their own (children of these groups), and the
    // endpoints' private DNS names must resolve before user data downloads, calls KMS or
    // signals CloudFormation.
    asg.node.addDependency(sg, endpointSg, s3Endpoint, ...interfaceEndpoints);
    NagSuppressions.addResourceSuppressions(asg, [
      {
        id: 'AwsSolutions-AS3',
        reason:
          'No notification topic: launches and replacements are gated by the CloudFormation signals (a failed ' +
          'instance stops and rolls back the deployment), and the NLB health check replaces instances whose ' +
          'enclave is down. Add an SNS topic with notifications when an operator channel exists to subscribe it',
      },
    ]);

    // ---- internal NLB: TLS passes through to the instances ----
    // The load balancer has its own security group (in: 443 from clientCidr). The instances
    // accept 8443 from that group only, which AWS honours with client IP preservation on
    // (instance targets): clients reach the API only through the NLB, and the NLB's health
    // checks are allowed whatever clientCidr is.
    const nlbSg = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc,
      allowAllOutbound: false,
      description: 'nitro-wallet NLB: HTTPS from the clients in, the instances API port out',
    });
    nlbSg.addIngressRule(ec2.Peer.ipv4(props.clientCidr ?? VPC_CIDR), ec2.Port.tcp(443), 'HTTPS API from the clients');
    sg.connections.allowFrom(nlbSg, ec2.Port.tcp(API_PORT), 'HTTPS API and /readyz health checks from the NLB only');
    const nlb = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc,
      internetFacing: false,
      crossZoneEnabled: true,
      securityGroups: [nlbSg],
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    });
    nlb.addListener('Https', { port: 443, protocol: elbv2.Protocol.TCP }).addTargets('Wallet', {
      port: API_PORT,
      protocol: elbv2.Protocol.TCP,
      targets: [asg],
      deregistrationDelay: Duration.seconds(30),
      healthCheck: {
        protocol: elbv2.Protocol.HTTPS,
        port: String(API_PORT),
        path: '/readyz',
        interval: Duration.seconds(10),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
    });

    NagSuppressions.addResourceSuppressions(nlb, [
      {
        id: 'AwsSolutions-ELB2',
        reason:
          'NLB access logs are written for TLS listeners only; this listener is TCP because TLS passes through to ' +
          'the instances (only they hold the TLS key), so there is nothing to log. The VPC flow logs record the ' +
          'connections',
      },
    ]);

    new CfnOutput(this, 'ApiEndpoint', { value: `https://${nlb.loadBalancerDnsName}` });
    new CfnOutput(this, 'KeyArn', { value: key.attrArn });
    new CfnOutput(this, 'InstanceRoleArn', { value: role.roleArn });
    new CfnOutput(this, 'EnclavePcr0', { value: m.pcr0 });
    new CfnOutput(this, 'AllowedPcr0s', { value: pcr0s.join(',') });
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function checkInputs(
  props: NitroWalletStackProps,
  instanceType: string,
  enclaveCpuCount: number,
  enclaveMemoryMib: number,
  minCapacity: number,
  maxCapacity: number,
  secretsPrefix: string,
): void {
  const tokens = props.apiTokenSha256s.split(',').filter((t) => t.length > 0);
  if (tokens.length === 0 || !tokens.every((t) => /^[A-Za-z0-9_.-]+=[0-9a-f]{64}$/.test(t))) {
    throw new DeployInputError(
      'apiTokenSha256s must be name=<sha256 hex>[,name=<sha256 hex>...] (printf %s "$TOKEN" | sha256sum); every /v1 route needs a token',
    );
  }
  for (const arn of props.adminPrincipalArns ?? []) {
    if (!ROLE_OR_ROOT_ARN.test(arn)) throw new DeployInputError(`adminPrincipalArns: not an IAM role, user or root ARN: ${arn}`);
  }
  // Nitro Enclaves need a Nitro instance with at least 4 vCPUs (the enclave takes whole cores
  // and the parent keeps CPU 0's); burstable types do not support enclaves.
  const [family, size] = instanceType.split('.');
  if (!family || !size || family.startsWith('t') || ['nano', 'micro', 'small', 'medium', 'large'].includes(size)) {
    throw new DeployInputError(`instanceType ${instanceType}: Nitro Enclaves need a non-burstable type of xlarge or more (e.g. c6i.xlarge, m5.xlarge)`);
  }
  if (!Number.isInteger(enclaveCpuCount) || enclaveCpuCount < 2 || enclaveCpuCount % 2 !== 0) {
    throw new DeployInputError('enclaveCpuCount must be an even number ≥ 2 (whole cores)');
  }
  if (!Number.isInteger(enclaveMemoryMib) || enclaveMemoryMib < 512) {
    throw new DeployInputError('enclaveMemoryMib must be an integer ≥ 512');
  }
  if (!Number.isInteger(minCapacity) || minCapacity < 1 || !Number.isInteger(maxCapacity) || maxCapacity <= minCapacity) {
    throw new DeployInputError('need 1 ≤ minCapacity < maxCapacity (a rolling update adds an instance before removing one)');
  }
  if (!/^[A-Za-z0-9/_+=.@-]+$/.test(secretsPrefix)) {
    throw new DeployInputError(`secretsPrefix ${secretsPrefix}: secret names allow ASCII letters, digits and /_+=.@- only`);
  }
  if (props.tlsSecretName !== undefined && !/^[A-Za-z0-9/_+=.@-]+$/.test(props.tlsSecretName)) {
    throw new DeployInputError(`tlsSecretName ${props.tlsSecretName} is not a secret name`);
  }
  if (props.clientCidr !== undefined && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(props.clientCidr)) {
    throw new DeployInputError(`clientCidr ${props.clientCidr} is not an IPv4 CIDR`);
  }
  if (!fs.existsSync(props.hostBinaryPath)) {
    throw new DeployInputError(
      `the host binary ${props.hostBinaryPath} does not exist: build it with deploy/scripts/build-host.sh or pass -c hostBinary=<path>`,
    );
  }
}
