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
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { ATTESTATION_KEY, keyPolicy } from './key-policy';
import { DeployInputError, Measurements, sha256File } from './measurements';
import { deployFilesBundle, renderUserData, USER_DATA_LIMIT } from './user-data';

/** The enclave's vsock CID: what `serve` dials (vsock://16:5000) and the supervisor assigns. */
const ENCLAVE_CID = 16;
/** Where `serve` listens on the instance; the NLB maps 443 to it, so no privileged port. */
const API_PORT = 8443;

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
      ipAddresses: ec2.IpAddresses.cidr('10.42.0.0/16'),
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
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
    for (const [name, service] of endpoints) {
      // Private DNS: kms.<region>.amazonaws.com resolves to the endpoint, so the vsock-proxy's
      // allowlisted name and the TLS certificate the enclave checks stay the regional ones.
      vpc.addInterfaceEndpoint(name, { service, privateDnsEnabled: true, subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } });
    }

    const sg = new ec2.SecurityGroup(this, 'InstanceSecurityGroup', {
      vpc,
      allowAllOutbound: false,
      description: 'nitro-wallet instances: the HTTPS API in, HTTPS to the VPC endpoints and S3 out',
    });
    sg.addIngressRule(
      ec2.Peer.ipv4(props.clientCidr ?? vpc.vpcCidrBlock),
      ec2.Port.tcp(API_PORT),
      'HTTPS API from clients (the NLB preserves client IPs) and the NLB health checks',
    );
    // Only the interface endpoints and the S3 gateway endpoint are routable (no NAT, no IGW);
    // the S3 prefix list id needs an account lookup, so 443 is opened and routing does the rest.
    sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'VPC endpoints and S3 (gateway endpoint) only: no other route exists');

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

    // ---- internal NLB: TLS passes through to the instances ----
    const nlb = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc,
      internetFacing: false,
      crossZoneEnabled: true,
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

    new CfnOutput(this, 'ApiEndpoint', { value: `https://${nlb.loadBalancerDnsName}` });
    new CfnOutput(this, 'KeyArn', { value: key.attrArn });
    new CfnOutput(this, 'InstanceRoleArn', { value: role.roleArn });
    new CfnOutput(this, 'EnclavePcr0', { value: m.pcr0 });
    new CfnOutput(this, 'AllowedPcr0s', { value: pcr0s.join(',') });
  }
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
